/**
 * The nsnet daemon: a long-running process that keeps NetworkHosts open (store, netlink and
 * nftables handles, the firewall already checked) and serves nsnet-cni requests over a unix
 * socket.
 *
 * Why a daemon: a runtime pays for a CNI plugin as a process. Starting node and loading nsnet
 * costs ~100-200 ms before any work, while the work itself (a connect) is ~15 ms; netavark's
 * whole setup is ~40 ms. With the daemon, `nsnet-cni` is a small native executable
 * (native/cni/client.c) that sends its CNI_* variables and stdin here and prints the reply: a
 * process start of ~1 ms plus the work. A V8 startup snapshot was the other candidate; it
 * still pays for starting node (~70 ms for `node -e 0`) and for opening every handle each
 * time, so it cannot get under netavark.
 *
 * Who starts it: nobody by hand. When nothing answers on the socket, the client starts this
 * program itself (native/cni/autostart.c: detached, in a session of its own, one at a time)
 * and the daemon exits after `idleExitMs` without a request. `nsnet daemon` runs the same
 * server in the foreground for supervisors, and systemd units (socket activation: an
 * inherited listening fd, LISTEN_FDS) ship in the package's systemd/ directory. When no
 * daemon can be had, the client runs the plugin in node itself (./main.ts): slower, never
 * wrong.
 *
 * One daemon per socket: the daemon holds an exclusive flock on `<socket without .sock>.lock`
 * (e.g. /run/nsnet/cni.lock) for its whole life — taken by itself (`nsnet daemon`), or taken by
 * the client that started it and inherited (`--lock-fd`), so that no second client can start
 * another in between. A daemon that finds the lock held refuses to start (ERR_DAEMON_RUNNING);
 * the kernel releases the lock when the daemon dies, however it dies, so a socket left behind
 * is known to be stale. Decision: a lock rather than the bind itself as the mutex, because a
 * stale socket has to be removed before binding, and "remove then bind" is a race two
 * starters can both win.
 *
 * Idle exit: after `idleExitMs` with no connection open, the daemon first removes its socket's
 * name (new clients then find no daemon and wait for the lock), serves whatever connected
 * before that for a short grace, then closes and exits. A client whose connection the kernel
 * still dropped gets no reply and runs the plugin itself (operations are idempotent). Under
 * socket activation the listening socket is systemd's: the daemon just stops, and systemd
 * queues new connections and starts it again.
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
 * an fd while their NetworkHost is pooled (./pool.ts), and closed after `idleTimeoutMs`
 * without requests.
 *
 *   node dist/lib/cni/daemon.js [--socket PATH] [--idle-timeout S] [--idle-exit S]
 *                               [--lock-fd N] [--ready-fd N]
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { NsnetError } from '../errors';
import { openNetns, type NetnsHandle } from '../netns';
import { FileLock } from '../store/flock';
import { run } from './plugin';
import { HostPool } from './pool';
import {
  STATUS_DECLINED, STATUS_SERVED, ProtocolError, decodeRequest, encodeReply, frameLength, type WireReply,
} from './protocol';

/** Where the daemon listens and the client connects by default (NSNET_CNI_SOCKET overrides both). */
export const DEFAULT_SOCKET = '/run/nsnet/cni.sock';
/** How long an autostarted daemon waits for a request before it exits (the client passes it). */
export const DEFAULT_IDLE_EXIT_MS = 60_000;

export interface DaemonOptions {
  /** The unix socket (default {@link DEFAULT_SOCKET}); also names the lock file. */
  socket?: string;
  /** A host namespace other than the daemon's own is closed after this long unused (default 60 s). */
  idleTimeoutMs?: number;
  /** Exit after this long without a connection (default: never). */
  idleExitMs?: number;
  /** Listen on this inherited, already listening socket (systemd socket activation) instead of creating `socket`. */
  listenFd?: number;
  /** The lock, already held on this inherited fd (the client that started the daemon took it). */
  lockFd?: number;
  /** Where the daemon reports failures it cannot send to a client (default: stderr). */
  log?: (msg: string) => void;
}

export interface CniDaemon {
  readonly socket: string;
  /** The lock file the daemon holds for its life. */
  readonly lockPath: string;
  /** It listens on an inherited socket (systemd's), which it neither created nor removes. */
  readonly inheritedSocket: boolean;
  /** Settles when the daemon has stopped: by close() or by its idle exit. */
  readonly closed: Promise<void>;
  /** Stops accepting, waits for requests in flight, closes every NetworkHost, removes the socket. */
  close(): Promise<void>;
}

/** How long a client may take to send its request. */
const READ_TIMEOUT_MS = 10_000;
/** Idle exit: how long connections made just before the socket's name went are still served. */
const RETIRE_GRACE_MS = 100;

/** `/run/nsnet/cni.sock` → `/run/nsnet/cni.lock` (the client computes the same name). */
export function lockPathOf(socket: string): string {
  return `${socket.endsWith('.sock') ? socket.slice(0, -5) : socket}.lock`;
}

/**
 * The listening socket systemd passed (socket activation, sd_listen_fds(3)): fd 3 when
 * LISTEN_PID is this process and LISTEN_FDS is 1. More than one socket is an error: the
 * daemon serves one.
 */
export function systemdListenFd(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number | undefined {
  if (env.LISTEN_PID === undefined || Number(env.LISTEN_PID) !== pid) return undefined;
  const n = Number(env.LISTEN_FDS);
  if (!Number.isInteger(n) || n < 1) return undefined;
  if (n > 1) throw new NsnetError('ERR_INVALID_ARGUMENT', `systemd passed ${n} sockets (LISTEN_FDS); the nsnet daemon listens on one`, { listenFds: n });
  return 3;
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

/** The daemon's lock: taken here, or inherited already held. Released when the daemon stops. */
async function takeLock(lockPath: string, inheritedFd: number | undefined, socket: string): Promise<() => void> {
  if (inheritedFd !== undefined) {
    let same = false;
    try {
      const a = fs.fstatSync(inheritedFd);
      const b = fs.statSync(lockPath);
      same = a.isFile() && a.ino === b.ino && a.dev === b.dev;
    } catch {
      same = false;
    }
    if (!same) throw new NsnetError('ERR_INVALID_ARGUMENT', `--lock-fd ${inheritedFd} is not an open descriptor of ${lockPath}`, { lockFd: inheritedFd, lockPath });
    return () => {
      try {
        fs.closeSync(inheritedFd);
      } catch {
        /* already closed */
      }
    };
  }
  let lock: FileLock;
  try {
    lock = await FileLock.acquire(lockPath, { wait: false });
  } catch (e) {
    if ((e as NsnetError).code === 'ERR_LOCKED') {
      throw new NsnetError('ERR_DAEMON_RUNNING', `a daemon already runs for ${socket} (it holds ${lockPath})`, { socket, lockPath });
    }
    throw e;
  }
  return () => lock.release();
}

/** Starts the daemon; resolves once it listens. */
export async function startDaemon(opts: DaemonOptions = {}): Promise<CniDaemon> {
  const socket = path.resolve(opts.socket ?? process.env.NSNET_CNI_SOCKET ?? DEFAULT_SOCKET);
  const lockPath = lockPathOf(socket);
  const log = opts.log ?? ((m: string) => void process.stderr.write(`nsnet daemon: ${m}\n`));
  if (process.getuid?.() !== 0) throw new NsnetError('ERR_NOT_ROOT', 'the nsnet daemon runs as root only (its socket is for root)');
  const inherited = opts.listenFd !== undefined;
  const own = openNetns(undefined);
  const ownInode = own.inode;
  own.close();
  const idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
  const pool = new HostPool(ownInode, idleTimeoutMs);
  if (!inherited) prepareDirectory(path.dirname(socket));
  const unlock = await takeLock(lockPath, opts.lockFd, socket);
  let server: net.Server;
  let socketIno: number | undefined;
  try {
    if (!inherited) await clearStale(socket);
    server = net.createServer({ allowHalfOpen: true });
    const old = inherited ? undefined : process.umask(0o177); // the socket is born 0600
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        const done = (): void => {
          server.off('error', reject);
          resolve();
        };
        if (inherited) server.listen({ fd: opts.listenFd! }, done);
        else server.listen(socket, done);
      });
    } finally {
      if (old !== undefined) process.umask(old);
    }
    if (!inherited) {
      fs.chmodSync(socket, 0o600);
      socketIno = fs.statSync(socket).ino;
    }
  } catch (e) {
    unlock();
    throw e;
  }

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

  // Idle exit: armed whenever no connection is open; any connection disarms it.
  let idleTimer: NodeJS.Timeout | undefined;
  let retiring = false;
  const armIdle = (): void => {
    if (!opts.idleExitMs || retiring || conns.size > 0) return;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(retire, opts.idleExitMs);
  };

  // allowHalfOpen: the client shuts down its side after the request and waits for the reply.
  server.on('connection', (conn) => {
    conns.add(conn);
    clearTimeout(idleTimer);
    conn.on('close', () => {
      conns.delete(conn);
      armIdle();
    });
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
  server.on('error', (e) => log(`server error: ${e.message}`));

  const sweeper = setInterval(() => { void pool.sweep().catch((e: Error) => log(`closing idle hosts: ${e.message}`)); }, Math.max(1000, idleTimeoutMs / 2));
  sweeper.unref();

  /** Removes the socket's name if it is still ours (a newer daemon may have replaced it). */
  const unlinkOwn = (): void => {
    if (socketIno === undefined) return;
    try {
      if (fs.lstatSync(socket).ino === socketIno) fs.unlinkSync(socket);
    } catch {
      /* already gone */
    }
    socketIno = undefined;
  };

  let closing: Promise<void> | undefined;
  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => { markClosed = resolve; });
  const close = (): Promise<void> => {
    closing ??= (async () => {
      retiring = true;
      clearTimeout(idleTimer);
      clearInterval(sweeper);
      unlinkOwn(); // first: from now on a client finds no daemon rather than a closing one
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of conns) if (!c.readableEnded && c.listenerCount('data') > 0) c.destroy(); // still sending: drop
      await Promise.allSettled([...inflight]);
      await stopped;
      await pool.closeAll();
      unlock();
    })().finally(markClosed);
    return closing;
  };

  /** The idle exit: the name goes first, connections made before it are served, then close. */
  function retire(): void {
    if (retiring || conns.size > 0) return;
    retiring = true;
    log(`no request for ${opts.idleExitMs! / 1000} s: exiting`);
    unlinkOwn();
    setTimeout(() => {
      void close().catch((e: Error) => log(`closing: ${e.message}`));
    }, inherited ? 0 : RETIRE_GRACE_MS);
  }
  armIdle();

  return { socket, lockPath, inheritedSocket: inherited, closed, close };
}

/** What the daemon program takes (its command line, or `nsnet daemon`'s options). */
export interface DaemonProgramOptions extends DaemonOptions {
  /** Written "ready\n" and closed once the daemon listens (the client that started it waits on it). */
  readyFd?: number;
  /** Called once the daemon listens (before readyFd is told). */
  onReady?: (d: CniDaemon) => void;
}

/**
 * Runs the daemon as this process's job: listens (on systemd's socket when LISTEN_FDS says
 * so), tells `readyFd` it is ready, and resolves once it stopped — by SIGTERM/SIGINT or by its
 * idle exit. The caller exits afterwards.
 */
export async function serveDaemon(opts: DaemonProgramOptions): Promise<CniDaemon> {
  const listenFd = opts.listenFd ?? systemdListenFd();
  if (listenFd !== undefined) {
    // Not for whatever this process might start: the fds are this process's.
    delete process.env.LISTEN_PID;
    delete process.env.LISTEN_FDS;
    delete process.env.LISTEN_FDNAMES;
  }
  const { readyFd, onReady, ...rest } = opts;
  const d = await startDaemon({ ...rest, ...(listenFd !== undefined ? { listenFd } : {}) });
  // The log (an autostarted daemon's is <socket>.log): one line per start, one per exit.
  const idle = opts.idleExitMs ? `exits after ${opts.idleExitMs / 1000} s without a request` : 'no idle exit';
  (opts.log ?? ((m: string) => void process.stderr.write(`nsnet daemon: ${m}\n`)))(
    `pid ${process.pid} listening on ${d.socket}${d.inheritedSocket ? ' (an inherited socket: socket activation)' : ''}; ${idle}`);
  onReady?.(d);
  if (readyFd !== undefined) {
    try {
      fs.writeSync(readyFd, 'ready\n');
    } catch {
      /* the starter gave up waiting: nothing to tell */
    }
    try {
      fs.closeSync(readyFd);
    } catch {
      /* already closed */
    }
  }
  const stop = (): void => void d.close();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await d.closed;
  process.off('SIGTERM', stop);
  process.off('SIGINT', stop);
  return d;
}

const USAGE = 'usage: node daemon.js [--socket PATH] [--idle-timeout SECONDS] [--idle-exit SECONDS] [--lock-fd N] [--ready-fd N]\n';

/** The command line of `node dist/lib/cni/daemon.js` (what the client starts). */
export function parseDaemonArgs(argv: string[]): DaemonProgramOptions {
  const opts: DaemonProgramOptions = {};
  const seconds = (flag: string, v: string | undefined, zeroOk: boolean): number => {
    const n = Number(v);
    if (v === undefined || v.trim() === '' || !Number.isFinite(n) || n < 0 || (!zeroOk && n === 0)) {
      throw new NsnetError('ERR_USAGE', `${flag} needs a ${zeroOk ? 'non-negative' : 'positive'} number of seconds`, { option: flag });
    }
    return n * 1000;
  };
  const fd = (flag: string, v: string | undefined): number => {
    if (v === undefined || !/^\d{1,9}$/u.test(v)) throw new NsnetError('ERR_USAGE', `${flag} needs a file descriptor number`, { option: flag });
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    if (a === '--socket' && v !== undefined) opts.socket = v;
    else if (a === '--idle-timeout') opts.idleTimeoutMs = seconds(a, v, false);
    else if (a === '--idle-exit') opts.idleExitMs = seconds(a, v, true);
    else if (a === '--lock-fd') opts.lockFd = fd(a, v);
    else if (a === '--ready-fd') opts.readyFd = fd(a, v);
    else throw new NsnetError('ERR_USAGE', a === '--help' || a === '-h' ? '' : `unknown argument ${a}`);
    i++;
  }
  return opts;
}

/** `node dist/lib/cni/daemon.js …` */
async function main(argv: string[]): Promise<void> {
  let opts: DaemonProgramOptions;
  try {
    opts = parseDaemonArgs(argv);
  } catch (e) {
    const msg = (e as Error).message;
    process.stderr.write(msg ? `nsnet daemon: ${msg}\n${USAGE}` : USAGE);
    process.exit(msg ? 2 : 0);
  }
  const log = (m: string): void => void process.stderr.write(`${new Date().toISOString()} nsnet daemon: ${m}\n`);
  await serveDaemon({
    ...opts,
    log,
    onReady: (d) => void process.stdout.write(`listening ${d.socket}\n`),
  });
  process.exit(0);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e: Error) => {
    process.stderr.write(`${new Date().toISOString()} nsnet daemon: ${e.message}\n`);
    process.exit(1);
  });
}
