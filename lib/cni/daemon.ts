/**
 * The nsnet-cni daemon: a long-running process that keeps NetworkHosts open (store, netlink and
 * nftables handles, the firewall already checked) and serves plugin requests over a unix socket.
 *
 * Why a daemon: a runtime pays for a CNI plugin as a process. Starting node and loading nsnet
 * costs ~100-200 ms before any work, while the work itself (a connect) is ~15 ms; netavark's
 * whole setup is ~40 ms. With the daemon, `nsnet-cni` is a small native executable
 * (native/cni/client.c) that sends its CNI_* variables and stdin here and prints the reply: a
 * process start of ~1 ms plus the work. A V8 startup snapshot was the other candidate; it
 * still pays for starting node (~70 ms for `node -e 0`) and for opening every handle each
 * time, so it cannot get under netavark. When no daemon answers, the client runs the plugin in
 * node itself (./main.ts): slower, never wrong.
 *
 * Security: the socket is created mode 0600 in a directory the daemon creates mode 0700 (or an
 * existing one only root can write to, or a sticky one), so only root can connect; the daemon
 * refuses to start as another user. Requests go through the same validation as the plugin
 * (./plugin.ts run()), after the frame itself is checked (./protocol.ts): only CNI_* variables,
 * bounded sizes, one request per connection, a read timeout.
 *
 * The host namespace of a request is the configuration's `hostNetns`, else the client's own:
 * the client sends its pid and the inode of its network namespace; the daemon opens
 * /proc/<pid>/ns/net and serves only if the inodes agree (else it declines and the client falls
 * back to running the plugin itself). Host namespaces other than the daemon's are held open by
 * an fd while their NetworkHost is pooled, and closed after `idleTimeoutMs` without requests.
 *
 *   node dist/lib/cni/daemon.js [--socket /run/nsnet/cni.sock] [--idle-timeout SECONDS]
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { NsnetError } from '../errors';
import { openNetns, type NetnsHandle, type NetnsSpec } from '../netns';
import { openLease, type HostLease } from './context';
import { run } from './plugin';
import {
  STATUS_DECLINED, STATUS_SERVED, ProtocolError, decodeRequest, encodeReply, frameLength, type WireReply,
} from './protocol';

/** Where the daemon listens and the client connects by default (NSNET_CNI_SOCKET overrides both). */
export const DEFAULT_SOCKET = '/run/nsnet/cni.sock';

export interface DaemonOptions {
  /** The unix socket (default {@link DEFAULT_SOCKET}). */
  socket?: string;
  /** A host namespace other than the daemon's own is closed after this long unused (default 60 s). */
  idleTimeoutMs?: number;
  /** Where the daemon reports failures it cannot send to a client (default: stderr). */
  log?: (msg: string) => void;
}

export interface CniDaemon {
  readonly socket: string;
  /** Stops accepting, waits for requests in flight, closes every NetworkHost, removes the socket. */
  close(): Promise<void>;
}

/** How long a client may take to send its request. */
const READ_TIMEOUT_MS = 10_000;

interface PoolEntry {
  key: string;
  opening: Promise<Awaited<ReturnType<typeof openLease>>>;
  /** The host namespace, held open (undefined: the daemon's own). */
  ns: NetnsHandle | undefined;
  refs: number;
  lastUsed: number;
  /** Closed once released: a request found it stale (see run()). */
  invalid: boolean;
}

/** NetworkHosts by state directory and host namespace. */
class HostPool {
  private readonly entries = new Map<string, PoolEntry>();

  constructor(private readonly ownInode: number, private readonly idleMs: number) {}

  async lease(stateDir: string, spec: NetnsSpec | undefined): Promise<HostLease> {
    let ns: NetnsHandle | undefined;
    if (spec !== undefined) {
      ns = openNetns(spec); // ERR_NETNS_NOT_FOUND for a hostNetns that does not exist
      if (ns.inode === this.ownInode) {
        ns.close();
        ns = undefined;
      }
    }
    const key = `${stateDir}\0${ns?.inode ?? this.ownInode}`;
    let entry = this.entries.get(key);
    if (entry && !entry.invalid) ns?.close();
    else {
      const netns = ns === undefined ? undefined : { fd: ns.fd };
      entry = { key, opening: openLease(stateDir, netns), ns, refs: 0, lastUsed: Date.now(), invalid: false };
      this.entries.set(key, entry);
      const e = entry;
      e.opening.catch(() => {
        if (this.entries.get(key) === e) this.entries.delete(key);
        e.ns?.close();
      });
    }
    const e = entry;
    e.refs++;
    let l: Awaited<ReturnType<typeof openLease>>;
    try {
      l = await e.opening;
    } catch (err) {
      e.refs--;
      throw err;
    }
    let released = false;
    return {
      host: l.host,
      netlink: l.netlink,
      netns: l.netns,
      invalidate: () => {
        e.invalid = true;
        if (this.entries.get(key) === e) this.entries.delete(key);
      },
      release: async () => {
        if (released) return;
        released = true;
        e.refs--;
        e.lastUsed = Date.now();
        if (e.invalid && e.refs === 0) await this.closeEntry(e);
      },
    };
  }

  private async closeEntry(e: PoolEntry): Promise<void> {
    if (this.entries.get(e.key) === e) this.entries.delete(e.key);
    try {
      await (await e.opening).close();
    } catch {
      /* failed to open: nothing to close */
    }
    e.ns?.close();
  }

  /** Closes foreign host namespaces' entries unused for the idle time. */
  async sweep(): Promise<void> {
    const now = Date.now();
    for (const e of [...this.entries.values()]) {
      if (e.refs === 0 && e.ns !== undefined && now - e.lastUsed >= this.idleMs) await this.closeEntry(e);
    }
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => this.closeEntry(e)));
  }
}

/** Refuses a socket directory others could write to (they could replace the socket). */
function prepareDirectory(dir: string): void {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      return;
    }
    if (code !== 'EEXIST') throw e;
  }
  const st = fs.statSync(dir);
  if (!st.isDirectory()) throw new NsnetError('ERR_INVALID_ARGUMENT', `${dir} is not a directory`, { dir });
  const sticky = (st.mode & 0o1000) !== 0;
  if (st.uid !== process.getuid!() && st.uid !== 0) throw new NsnetError('ERR_INVALID_ARGUMENT', `the socket directory ${dir} belongs to uid ${st.uid}`, { dir });
  if ((st.mode & 0o022) !== 0 && !sticky) throw new NsnetError('ERR_INVALID_ARGUMENT', `the socket directory ${dir} is writable by others`, { dir });
}

/** Removes a stale socket (a daemon that died); refuses when one still answers, or a non-socket. */
async function clearStale(socket: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(socket);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new NsnetError('ERR_INVALID_ARGUMENT', `${socket} exists and is not a socket`, { socket });
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(socket);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
  if (alive) throw new NsnetError('ERR_DAEMON_RUNNING', `a daemon already listens on ${socket}`, { socket });
  fs.unlinkSync(socket);
}

/** Starts the daemon; resolves once it listens. */
export async function startDaemon(opts: DaemonOptions = {}): Promise<CniDaemon> {
  const socket = path.resolve(opts.socket ?? process.env.NSNET_CNI_SOCKET ?? DEFAULT_SOCKET);
  const log = opts.log ?? ((m: string) => void process.stderr.write(`nsnet-cni daemon: ${m}\n`));
  if (process.getuid?.() !== 0) throw new NsnetError('ERR_PERMISSION', 'the nsnet-cni daemon runs as root only (its socket is for root)');
  const own = openNetns(undefined);
  const ownInode = own.inode;
  own.close();
  const pool = new HostPool(ownInode, opts.idleTimeoutMs ?? 60_000);
  prepareDirectory(path.dirname(socket));
  await clearStale(socket);

  const inflight = new Set<Promise<unknown>>();
  const conns = new Set<net.Socket>();

  async function serve(buf: Buffer): Promise<WireReply> {
    const req = decodeRequest(buf);
    let caller: NetnsHandle | undefined;
    if (req.netnsInode !== ownInode) {
      try {
        caller = openNetns(req.pid);
      } catch {
        caller = undefined;
      }
      if (!caller || caller.inode !== req.netnsInode) {
        // Another pid namespace, or a pid that is not the client's: let it do the work itself.
        caller?.close();
        return { status: STATUS_DECLINED, exitCode: 0, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
      }
    }
    try {
      const res = await run(req.env, req.stdin.toString('utf8'), {
        ...(caller ? { callerNetns: { fd: caller.fd } } : {}),
        open: (stateDir, netns) => pool.lease(stateDir, netns),
      });
      return { status: STATUS_SERVED, exitCode: res.exitCode, stdout: Buffer.from(res.stdout), stderr: Buffer.from(res.stderr) };
    } finally {
      caller?.close();
    }
  }

  // allowHalfOpen: the client shuts down its side after the request and waits for the reply.
  const server = net.createServer({ allowHalfOpen: true }, (conn) => {
    conns.add(conn);
    conn.on('close', () => conns.delete(conn));
    conn.on('error', () => undefined);
    conn.setTimeout(READ_TIMEOUT_MS, () => conn.destroy());
    let chunks: Buffer[] = [];
    let size = 0;
    let want: number | undefined;
    const onData = (d: Buffer): void => {
      chunks.push(d);
      size += d.length;
      try {
        if (want === undefined) want = frameLength(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
      } catch (e) {
        log(`refused a request: ${(e as Error).message}`);
        conn.destroy();
        return;
      }
      if (want === undefined || size < want) return;
      conn.off('data', onData);
      conn.setTimeout(0);
      const buf = Buffer.concat(chunks).subarray(0, want);
      chunks = [];
      const p = serve(buf).then(
        (reply) => { conn.end(encodeReply(reply)); },
        (e: unknown) => {
          log(`refused a request: ${e instanceof ProtocolError ? e.message : String((e as Error)?.stack ?? e)}`);
          conn.destroy();
        },
      );
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
    };
    conn.on('data', onData);
  });

  const old = process.umask(0o177); // the socket is born 0600
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socket, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(old);
  }
  fs.chmodSync(socket, 0o600);
  server.on('error', (e) => log(`server error: ${e.message}`));

  const sweeper = setInterval(() => { void pool.sweep().catch((e: Error) => log(`closing idle hosts: ${e.message}`)); }, Math.max(1000, (opts.idleTimeoutMs ?? 60_000) / 2));
  sweeper.unref();

  let closing: Promise<void> | undefined;
  return {
    socket,
    close() {
      closing ??= (async () => {
        clearInterval(sweeper);
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const c of conns) if (!c.readableEnded && c.listenerCount('data') > 0) c.destroy(); // still sending: drop
        await Promise.allSettled([...inflight]);
        await stopped;
        await pool.closeAll();
        try {
          fs.unlinkSync(socket);
        } catch {
          /* already gone */
        }
      })();
      return closing;
    },
  };
}

/** `node dist/lib/cni/daemon.js [--socket PATH] [--idle-timeout SECONDS]` */
async function main(argv: string[]): Promise<void> {
  const opts: DaemonOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--socket' && argv[i + 1] !== undefined) opts.socket = argv[++i]!;
    else if (a === '--idle-timeout' && argv[i + 1] !== undefined) opts.idleTimeoutMs = Number(argv[++i]) * 1000;
    else {
      process.stderr.write('usage: node daemon.js [--socket PATH] [--idle-timeout SECONDS]\n');
      process.exit(a === '--help' || a === '-h' ? 0 : 2);
    }
  }
  if (opts.idleTimeoutMs !== undefined && !(opts.idleTimeoutMs > 0)) {
    process.stderr.write('--idle-timeout must be a positive number of seconds\n');
    process.exit(2);
  }
  const d = await startDaemon(opts);
  process.stdout.write(`listening ${d.socket}\n`);
  const stop = (): void => {
    void d.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e: Error) => {
    process.stderr.write(`nsnet-cni daemon: ${e.message}\n`);
    process.exit(1);
  });
}
