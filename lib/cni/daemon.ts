/**
 * The nsnet daemon: a long-running process that keeps NetworkHosts open (store, netlink and
 * nftables handles, the firewall already checked) and serves nsnet-cni requests over a unix
 * socket; and the embedded DNS resolver for the networks of those requests and of the CLI's
 * connects (./resolvers.ts: nobody else runs one for them).
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
 * Idle exit: after `idleExitMs` with no connection open — and while no network its resolvers
 * serve has an endpoint (./resolvers.ts; otherwise the timer starts over) — the daemon first removes its socket's
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
import * as v8 from 'node:v8';
import { NsnetError } from '../errors';
import { startDaemon, type CniDaemon, type DaemonOptions } from './server';

export { DEFAULT_IDLE_EXIT_MS, DEFAULT_SOCKET, lockPathOf, startDaemon } from './server';
export type { CniDaemon, DaemonOptions } from './server';

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
  // The daemon's JavaScript is glue around kernel requests: baseline-compiled code (Sparkplug)
  // serves it as fast as optimized code within the noise of a request, and leaving V8's
  // optimizing compiler off keeps ~10 MiB of compiler code and data out of the daemon's
  // resident memory (bench/daemon.ts). Set at run time, so `nsnet daemon` gets it too; a V8
  // that does not know the flag says so on stderr and goes on.
  v8.setFlagsFromString('--max-opt=1');
  const listenFd = opts.listenFd ?? systemdListenFd();
  if (listenFd !== undefined) {
    // Not for whatever this process might start: the fds are this process's.
    delete process.env.LISTEN_PID;
    delete process.env.LISTEN_FDS;
    delete process.env.LISTEN_FDNAMES;
  }
  const { readyFd, onReady, ...rest } = opts;
  const d = await startDaemon({ collectWhenIdle: true, ...rest, ...(listenFd !== undefined ? { listenFd } : {}) });
  // The log (an autostarted daemon's is <socket>.log): one line per start, one per exit.
  const idle = opts.idleExitMs ? `exits after ${opts.idleExitMs / 1000} s without a request` : 'no idle exit';
  (opts.log ?? ((m: string) => void process.stderr.write(`nsnet daemon: ${m}\n`)))(
    `pid ${process.pid} listening on ${d.socket}${d.inheritedSocket ? ' (an inherited socket: socket activation)' : ''}; ${idle}`,
  );
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
