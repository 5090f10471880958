/**
 * Finding an endpoint's kernel objects without its record, by the marks nsnet leaves: a
 * veth's host end carries the alias `nsnet:<network>:<endpoint>` and points at its peer (index
 * and namespace); a macvlan child carries the alias itself, inside the container. The
 * container's namespace is looked for where namespaces can be found by path: the named ones
 * (`/var/run/netns`), every nsfs mount (`/proc/self/mountinfo`: Docker's, CNI runtimes'), and
 * every process's (`/proc/<pid>/ns/net`) — in that order, so a stable name is preferred to a
 * pid. Read-only; each namespace is looked at once per search.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Address } from '../netlink/addresses';
import type { Link } from '../netlink/link-types';
import { Netlink } from '../netlink/netlink';
import { NETNS_DIR, netnsPath, type NetnsSpec } from '../netns';

/** A link found in a namespace other than the host's, with that namespace's path and the link's addresses. */
export interface FoundLink {
  netns: string;
  link: Link;
  addresses: Address[];
}

interface Seen {
  netns: string;
  links: Link[];
  addresses: Address[];
}

/** `\040`-style escapes of /proc/self/mountinfo. */
const unescape = (s: string): string => s.replace(/\\([0-7]{3})/gu, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Paths that may be network namespaces, best names first. */
function candidates(): string[] {
  const out: string[] = [];
  try {
    for (const n of fs.readdirSync(NETNS_DIR).sort()) out.push(path.join(NETNS_DIR, n));
  } catch {
    /* no named namespaces */
  }
  try {
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const f = line.split(' ');
      const sep = f.indexOf('-');
      if (sep > 0 && f[sep + 1] === 'nsfs' && f[4] !== undefined) out.push(unescape(f[4]));
    }
  } catch {
    /* no /proc */
  }
  try {
    const pids = fs
      .readdirSync('/proc')
      .filter((n) => /^\d+$/u.test(n))
      .map(Number)
      .sort((a, b) => a - b);
    for (const pid of pids) out.push(`/proc/${pid}/ns/net`);
  } catch {
    /* no /proc */
  }
  return out;
}

function identity(p: string): string | undefined {
  try {
    const st = fs.statSync(p);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** Searches the namespaces other than the host's for nsnet's marks (looks once, on first use). */
export class NamespaceSearch {
  private seen: Promise<Seen[]> | undefined;

  constructor(private readonly hostNetns: NetnsSpec | undefined) {}

  /** The container end of a host-side veth: the veth whose index and peer match it both ways. */
  async vethPeer(host: Link): Promise<FoundLink | undefined> {
    if (host.kind !== 'veth' || host.parentIndex === undefined) return undefined;
    const found = (await this.all()).flatMap((s) =>
      s.links
        .filter((l) => l.kind === 'veth' && l.index === host.parentIndex && l.parentIndex === host.index)
        .map((link) => ({ netns: s.netns, link, addresses: s.addresses.filter((a) => a.index === link.index) })),
    );
    // Two namespaces with a veth pair of the same indexes pointing at the same host index: cannot tell.
    return found.length === 1 ? found[0] : undefined;
  }

  /** The one link marked `alias` outside the host namespace. */
  async byAlias(alias: string, kind: Link['kind']): Promise<FoundLink | undefined> {
    const found = (await this.all()).flatMap((s) =>
      s.links
        .filter((l) => l.kind === kind && l.alias === alias)
        .map((link) => ({ netns: s.netns, link, addresses: s.addresses.filter((a) => a.index === link.index) })),
    );
    return found.length === 1 ? found[0] : undefined;
  }

  private all(): Promise<Seen[]> {
    this.seen ??= this.look();
    return this.seen;
  }

  private async look(): Promise<Seen[]> {
    const done = new Set<string | undefined>([identity(netnsPath(this.hostNetns)), undefined]);
    const out: Seen[] = [];
    for (const p of candidates()) {
      const id = identity(p);
      if (done.has(id)) continue;
      done.add(id);
      let nl: Netlink;
      try {
        nl = await Netlink.open({ netns: p });
      } catch {
        continue; // gone meanwhile, or not a network namespace (an nsfs mount of another kind)
      }
      try {
        out.push({ netns: p, links: await nl.links.list(), addresses: await nl.addresses.list() });
      } catch {
        /* gone meanwhile */
      } finally {
        nl.close();
      }
    }
    return out;
  }
}
