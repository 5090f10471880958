/**
 * The host's resolver configuration (resolv.conf(5)): the upstreams a network without its own
 * forwards to, and the search domains its containers get. Read as glibc reads it — the first
 * three `nameserver` lines, the last `search`/`domain` line, no nameserver meaning 127.0.0.1 —
 * and re-read when the file changes (checked when used, at most every 250 ms). The resolver runs
 * in the host namespace, so a loopback upstream such as systemd-resolved's 127.0.0.53 works.
 */
import * as fs from 'node:fs';
import { parseUpstream, type Upstream } from './names';

export const DEFAULT_RESOLV_CONF = '/etc/resolv.conf';
/** glibc's MAXNS. */
const MAX_NAMESERVERS = 3;
const RECHECK_MS = 250;

export interface ResolvConf {
  nameservers: Upstream[];
  search: string[];
  options: string[];
}

/** Parses resolv.conf text. Lines it does not understand are skipped, as the C library does. */
export function parseResolvConf(text: string): ResolvConf {
  const nameservers: Upstream[] = [];
  let search: string[] = [];
  const options: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/u, '').trim();
    const [key, ...args] = line.split(/\s+/u);
    if (key === 'nameserver' && args[0] !== undefined && nameservers.length < MAX_NAMESERVERS) {
      // A zone (fe80::1%eth0) is link-local: parseUpstream refuses it, and so it is skipped.
      try {
        nameservers.push(parseUpstream(args[0]));
      } catch {
        /* not an address: skipped */
      }
    } else if ((key === 'search' || key === 'domain') && args.length > 0) {
      search = args.filter((d) => d !== '.').slice(0, 32);
    } else if (key === 'options') {
      options.push(...args);
    }
  }
  if (nameservers.length === 0) nameservers.push({ address: '127.0.0.1', port: 53, family: 4 });
  return { nameservers, search, options };
}

/** Reads and parses a resolv.conf now (a missing or unreadable file: the defaults). */
export function readResolvConf(file = DEFAULT_RESOLV_CONF): ResolvConf {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    /* absent: glibc's defaults */
  }
  return parseResolvConf(text);
}

const parsed = new Map<string, { sig: string; conf: ResolvConf }>();

/**
 * {@link readResolvConf}, re-read only when the file changed (one stat per call, which sees
 * every change: its identity, size and times): what an endpoint's `dns` shows, per connect.
 */
export function currentResolvConf(file = DEFAULT_RESOLV_CONF): ResolvConf {
  const sig = signatureOf(file);
  const known = parsed.get(file);
  if (known && known.sig === sig && sig !== 'absent') return known.conf;
  const conf = readResolvConf(file);
  parsed.set(file, { sig, conf });
  return conf;
}

function signatureOf(file: string): string {
  try {
    // stat follows the symlink: /etc/resolv.conf -> /run/systemd/resolve/stub-resolv.conf.
    const st = fs.statSync(file, { bigint: true });
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch {
    return 'absent';
  }
}

/** A resolv.conf kept current: `current()` re-reads the file when its identity or times changed. */
export class ResolvConfFile {
  private conf: ResolvConf;
  private sig = '';
  private checked = 0;

  constructor(readonly file: string = DEFAULT_RESOLV_CONF) {
    this.conf = this.load();
  }

  /** The configuration as the file is now (checked at most every 250 ms). */
  current(): ResolvConf {
    const now = Date.now();
    if (now - this.checked >= RECHECK_MS) {
      this.checked = now;
      if (this.signature() !== this.sig) this.conf = this.load();
    }
    return this.conf;
  }

  /** Forgets the last check: the next current() looks at the file. */
  invalidate(): void {
    this.checked = 0;
  }

  private signature(): string {
    return signatureOf(this.file);
  }

  private load(): ResolvConf {
    this.sig = this.signature();
    return readResolvConf(this.file);
  }
}
