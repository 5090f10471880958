/**
 * The nsnet daemon's server: listens on the unix socket (or an inherited one), holds the
 * daemon's lock for its life, serves each connection's request with a pooled NetworkHost
 * (./pool.ts), collects its garbage when a burst of requests is over, and exits when idle if
 * asked to. Why there is a daemon, who starts it, the lock and the idle exit: ./daemon.ts.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { NsnetError } from '../errors';
import { openNetns, type NetnsHandle } from '../netns';
import { native } from '../native';
import { FileLock } from '../store/flock';
import { run } from './plugin';
import { HostPool } from './pool';
import {
  STATUS_DECLINED,
  STATUS_SERVED,
  ProtocolError,
  decodeControl,
  decodeRequest,
  encodeControl,
  encodeReply,
  frameLength,
  isControlFrame,
  type WireReply,
} from './protocol';
import { DaemonResolvers, registryPathOf } from './resolvers';

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
  /**
   * Run a full garbage collection once a burst of requests is over (default false: a program
   * embedding the server keeps its own heap policy; the daemon program turns it on).
   */
  collectWhenIdle?: boolean;
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
/** How long without a connection before the daemon collects its garbage (once per burst). */
const IDLE_GC_MS = 2000;

/**
 * A full garbage collection, for the daemon's quiet moments. V8 grows its heap to absorb a
 * burst of requests (each one leaves store documents and replies behind) and keeps it grown:
 * 1,000 ADDs left a daemon at ~100 MiB resident with ~8 MiB of live objects. Collecting once
 * when the burst is over gives the memory back (test: bench/daemon.ts). Node exposes gc() only
 * behind --expose-gc, which can still be turned on here; undefined if that ever fails.
 */
function collector(): (() => void) | undefined {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  try {
    v8.setFlagsFromString('--expose-gc');
    const fn = vm.runInNewContext('gc') as unknown;
    return typeof fn === 'function' ? (fn as () => void) : undefined;
  } catch {
    return undefined;
  }
}

/** `/run/nsnet/cni.sock` → `/run/nsnet/cni.lock` (the client computes the same name). */
export function lockPathOf(socket: string): string {
  return `${socket.endsWith('.sock') ? socket.slice(0, -5) : socket}.lock`;
}

/** Refuses a socket directory others could write to (they could replace the socket); the CLI's autostart checks the same. */
export function prepareDirectory(dir: string): void {
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
  if (st.uid !== process.getuid!() && st.uid !== 0)
    throw new NsnetError('ERR_INVALID_ARGUMENT', `the socket directory ${dir} belongs to uid ${st.uid}`, { dir });
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
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive) throw new NsnetError('ERR_DAEMON_RUNNING', `a daemon already listens on ${socket}`, { socket });
  fs.unlinkSync(socket);
}

/** The daemon's lock: taken here, or inherited already held. Released when the daemon stops. */
async function takeLock(lockPath: string, inheritedFd: number | undefined, socket: string): Promise<() => void> {
  if (inheritedFd !== undefined) {
    let same: boolean;
    try {
      const a = fs.fstatSync(inheritedFd);
      const b = fs.statSync(lockPath);
      same = a.isFile() && a.ino === b.ino && a.dev === b.dev;
    } catch {
      same = false;
    }
    if (!same)
      throw new NsnetError('ERR_INVALID_ARGUMENT', `--lock-fd ${inheritedFd} is not an open descriptor of ${lockPath}`, { lockFd: inheritedFd, lockPath });
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
  // DNS for the networks of the requests served (./resolvers.ts), resumed from the registry.
  const resolvers = new DaemonResolvers({ ownInode, registry: registryPathOf(socket), idleMs: idleTimeoutMs, log });
  void resolvers.restore();

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
        serveDns: (stateDir, netns) =>
          resolvers.serve(stateDir, netns).catch((e: Error) => {
            log(`DNS for ${stateDir}: ${e.message}`);
            throw e;
          }),
      });
      return { status: STATUS_SERVED, exitCode: res.exitCode, stdout: Buffer.from(res.stdout), stderr: Buffer.from(res.stderr) };
    } finally {
      caller?.close();
    }
  }

  // Idle exit: armed whenever no connection is open; any connection disarms it.
  let idleTimer: NodeJS.Timeout | undefined;
  /** The idle exit found containers using the daemon's DNS and said so (./resolvers.ts). */
  let heldSaid = false;
  let retiring = false;
  // Garbage: collected once when a burst of requests is over (IDLE_GC_MS without a connection).
  const gc = opts.collectWhenIdle ? collector() : undefined;
  let gcTimer: NodeJS.Timeout | undefined;
  let servedSinceGc = false;
  const armIdle = (): void => {
    if (retiring || conns.size > 0) return;
    if (gc && servedSinceGc) {
      clearTimeout(gcTimer);
      gcTimer = setTimeout(() => {
        if (conns.size > 0 || retiring) return;
        servedSinceGc = false;
        gc();
        native.trimMemory();
      }, IDLE_GC_MS);
      gcTimer.unref();
    }
    if (!opts.idleExitMs) return;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(retire, opts.idleExitMs);
  };

  // allowHalfOpen: the client shuts down its side after the request and waits for the reply.
  server.on('connection', (conn) => {
    conns.add(conn);
    heldSaid = false;
    servedSinceGc = true;
    clearTimeout(idleTimer);
    clearTimeout(gcTimer);
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
      // A control frame is the CLI's (./resolvers.ts handle()); any other a CNI request.
      const reply = isControlFrame(buf)
        ? Promise.resolve()
            .then(() => resolvers.handle(decodeControl(buf)))
            .then(encodeControl)
        : serve(buf).then(encodeReply);
      const p = reply.then(
        (bytes) => {
          conn.end(bytes);
        },
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

  const sweeper = setInterval(
    () => {
      void pool.sweep().catch((e: Error) => log(`closing idle hosts: ${e.message}`));
    },
    Math.max(1000, idleTimeoutMs / 2),
  );
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
  /** Stopped by its idle exit (not by a signal or close()): the DNS registry is emptied. */
  let idleExit = false;
  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => {
    markClosed = resolve;
  });
  const close = (): Promise<void> => {
    closing ??= (async () => {
      retiring = true;
      clearTimeout(idleTimer);
      clearTimeout(gcTimer);
      clearInterval(sweeper);
      unlinkOwn(); // first: from now on a client finds no daemon rather than a closing one
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of conns) if (!c.readableEnded && c.listenerCount('data') > 0) c.destroy(); // still sending: drop
      await Promise.allSettled([...inflight]);
      await stopped;
      await resolvers.closeAll(idleExit);
      await pool.closeAll();
      unlock();
    })().finally(markClosed);
    return closing;
  };

  /**
   * The idle exit: the name goes first, connections made before it are served, then close. Not
   * while a resolver has a network with endpoints (./resolvers.ts): then the timer starts over.
   */
  function retire(): void {
    if (retiring || conns.size > 0) return;
    void resolvers.holding().then(
      (held) => {
        if (retiring || conns.size > 0) return;
        if (!held) return stepDown();
        // Said once per quiet spell (a request in between says it again).
        if (!heldSaid) log(`no request for ${opts.idleExitMs! / 1000} s, but containers use its DNS: staying`);
        heldSaid = true;
        armIdle();
      },
      () => armIdle(),
    );
  }
  function stepDown(): void {
    retiring = true;
    idleExit = true;
    log(`no request for ${opts.idleExitMs! / 1000} s: exiting`);
    unlinkOwn();
    setTimeout(
      () => {
        void close().catch((e: Error) => log(`closing: ${e.message}`));
      },
      inherited ? 0 : RETIRE_GRACE_MS,
    );
  }
  armIdle();

  return { socket, lockPath, inheritedSocket: inherited, closed, close };
}
