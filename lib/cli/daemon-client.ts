/**
 * Who answers the names when the CLI is used. `nsnet connect` on a network with DNS returns
 * `dns` — the network's gateway as the container's nameserver — but the CLI is one process per
 * command and the library starts no process, so the resolver must live elsewhere: in the nsnet
 * daemon, the long-running process nsnet-cni already uses. After such a connect the CLI asks
 * the daemon (a control frame on its socket, lib/cni/protocol.ts) to serve the state directory
 * in the CLI's host namespace (lib/cni/resolvers.ts), and the daemon stays up while that
 * network has endpoints.
 *
 * Decision: when no daemon answers, the CLI starts one, exactly as the nsnet-cni client does
 * (native/cni/autostart.c: the daemon's lock taken first and handed over as fd 3, a pipe on
 * fd 4 it says "ready" on, detached in a session of its own, its log beside the socket,
 * `NSNET_CNI_IDLE_EXIT`), rather than only warning. A user who connects a container with
 * `--name web` expects `web` to resolve, and one whose resolv.conf names the gateway expects
 * any name to resolve; the daemon already exists for that, is root's like the CLI's work, and
 * exits by itself once nothing on its networks needs it. When no daemon can be had
 * (`NSNET_CNI_AUTOSTART=0`, it fails to start, it runs in another mount or pid namespace) the
 * connect still succeeds and one line on stderr says the names are not served and why.
 * `NSNET_CNI_SOCKET=none` means "no daemon": nothing is asked and nothing is said.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Endpoint } from '../host-types';
import { netnsPath } from '../netns';
import { FileLock } from '../store/flock';
import { decodeControl, encodeControl, frameLength } from '../cni/protocol';
import { DEFAULT_SOCKET, lockPathOf, prepareDirectory } from '../cni/server';
import type { DnsServeReply } from '../cni/resolvers';
import type { Context } from './context';

const START_TIMEOUT_MS = 30_000;
const REPLY_TIMEOUT_MS = 30_000;
const LOG_LIMIT = 1024 * 1024;
const DAEMON_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const DAEMON_SCRIPT = path.join(__dirname, '..', 'cni', 'daemon.js');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function connectTo(socket: string): Promise<net.Socket | NodeJS.ErrnoException> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    c.once('connect', () => resolve(c));
    c.once('error', (e) => resolve(e));
  });
}

/** `NSNET_CNI_IDLE_EXIT` as the C client reads it (seconds; default 60). */
function idleExit(env: NodeJS.ProcessEnv): string {
  const v = env.NSNET_CNI_IDLE_EXIT;
  return v !== undefined && /^\d{1,9}(\.\d{1,3})?$/u.test(v) ? v : '60';
}

/** Starts the daemon holding `lock`; resolves once it says it listens, or with why not. */
async function spawnDaemon(socket: string, lock: FileLock, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const logPath = `${socket.endsWith('.sock') ? socket.slice(0, -5) : socket}.log`;
  const logFd = fs.openSync(logPath, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_APPEND | fs.constants.O_NOFOLLOW, 0o600);
  try {
    if (fs.fstatSync(logFd).size > LOG_LIMIT) fs.ftruncateSync(logFd, 0);
    const daemonEnv: NodeJS.ProcessEnv = { PATH: DAEMON_PATH, MALLOC_ARENA_MAX: '2' };
    for (const [k, v] of Object.entries(env)) if (k.startsWith('NSNET_') && v !== undefined) daemonEnv[k] = v;
    const child = spawn(
      env.NSNET_NODE || process.execPath,
      ['--max-semi-space-size=1', DAEMON_SCRIPT, '--socket', socket, '--lock-fd', '3', '--ready-fd', '4', '--idle-exit', idleExit(env)],
      { detached: true, cwd: '/', env: daemonEnv, stdio: ['ignore', 'ignore', logFd, lock.descriptor!, 'pipe'] },
    );
    const ready = child.stdio[4] as NodeJS.ReadableStream & { destroy(): void };
    const said = await new Promise<string | undefined>((resolve) => {
      let text = '';
      const timer = setTimeout(() => resolve('it did not say it listens in time'), START_TIMEOUT_MS);
      const done = (why: string | undefined): void => {
        clearTimeout(timer);
        resolve(why);
      };
      child.once('error', (e) => done(`cannot run node: ${e.message}`));
      ready.on('data', (d: Buffer) => {
        text += d.toString();
        if (text.startsWith('ready')) done(undefined);
      });
      ready.once('end', () => done(`it exited before listening (see ${logPath})`));
    });
    ready.destroy();
    child.unref();
    return said;
  } finally {
    fs.closeSync(logFd);
  }
}

/**
 * A connection to the daemon on `socket`, starting one when nothing answers (see the file
 * comment); or why there is none.
 */
async function reachDaemon(socket: string, env: NodeJS.ProcessEnv): Promise<net.Socket | string> {
  const first = await connectTo(socket);
  if (first instanceof net.Socket) return first;
  if (first.code !== 'ENOENT' && first.code !== 'ECONNREFUSED') return `cannot reach ${socket}: ${first.message}`;
  if (['0', 'no', 'false'].includes(env.NSNET_CNI_AUTOSTART ?? ''))
    return `no daemon listens on ${socket} and NSNET_CNI_AUTOSTART=${env.NSNET_CNI_AUTOSTART} forbids starting one`;
  if (process.getuid?.() !== 0) return `no daemon listens on ${socket}, and only root can start one`;
  try {
    prepareDirectory(path.dirname(socket));
  } catch (e) {
    return `no daemon listens on ${socket}, and none can be started there: ${(e as Error).message}`;
  }
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (let pause = 1; ; pause = Math.min(pause * 2, 25)) {
    let lock: FileLock | undefined;
    try {
      lock = await FileLock.acquire(lockPathOf(socket), { wait: false });
    } catch (e) {
      if ((e as { code?: string }).code !== 'ERR_LOCKED') return `cannot take ${lockPathOf(socket)}: ${(e as Error).message}`;
    }
    if (lock) {
      try {
        // Nobody runs a daemon for this socket (one may have come and gone since the first try).
        const again = await connectTo(socket);
        if (again instanceof net.Socket) return again;
        const why = await spawnDaemon(socket, lock, env);
        if (why) return `the nsnet daemon did not start: ${why}`;
        const c = await connectTo(socket);
        return c instanceof net.Socket ? c : `the nsnet daemon started but ${socket} does not answer: ${c.message}`;
      } finally {
        lock.release(); // the daemon's copy keeps the lock
      }
    }
    // Another process is starting the daemon (or one is exiting): wait for it to answer.
    const c = await connectTo(socket);
    if (c instanceof net.Socket) return c;
    if (Date.now() >= deadline) return `another process's start of the nsnet daemon on ${socket} did not finish in time`;
    await sleep(pause);
  }
}

/** Sends one control request; resolves with the reply, or undefined when the connection closed without one. */
function exchange(c: net.Socket, body: unknown): Promise<Record<string, unknown> | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => c.destroy(), REPLY_TIMEOUT_MS);
    c.on('data', (d: Buffer) => chunks.push(d));
    c.on('error', () => undefined);
    c.once('close', () => {
      clearTimeout(timer);
      const buf = Buffer.concat(chunks);
      try {
        resolve(buf.length > 0 && frameLength(buf) === buf.length ? decodeControl(buf) : undefined);
      } catch {
        resolve(undefined);
      }
    });
    c.end(encodeControl(body));
  });
}

/** Asks the daemon to serve `stateDir`'s names in the host namespace; why not when it does not. */
async function askDaemon(socket: string, body: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<DnsServeReply | string> {
  // Twice: a daemon exiting when idle may drop a connection it accepted; the next start serves.
  for (let attempt = 0; attempt < 2; attempt++) {
    const c = await reachDaemon(socket, env);
    if (typeof c === 'string') return c;
    const reply = await exchange(c, body);
    if (reply) return reply as unknown as DnsServeReply;
  }
  return `the nsnet daemon on ${socket} closed the connection without a reply (see its log)`;
}

/**
 * After a connect that returned `dns`: makes sure the daemon serves the endpoint's network
 * (starting it if need be), or says on stderr why the names will not resolve. Never fails the
 * command: the endpoint is made either way.
 */
export async function ensureDnsServed(ctx: Context, ep: Endpoint, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  if (!ep.dns) return;
  const socket = env.NSNET_CNI_SOCKET || DEFAULT_SOCKET;
  if (socket === 'none') return;
  const warn = (why: string): void =>
    void ctx.io.stderr.write(
      `nsnet: warning: ERR_DNS_NOT_SERVED: names on network ${ep.network} resolve only while an nsnet daemon serves them (\`sudo nsnet daemon\`): ${why}\n`,
    );
  try {
    const g = ctx.globals;
    const hostNetns = g.hostNetns === undefined ? undefined : netnsPath(/^\d+$/u.test(g.hostNetns) ? Number(g.hostNetns) : g.hostNetns);
    const body = {
      op: 'dns',
      stateDir: path.resolve(g.stateDir ?? '/var/lib/nsnet'),
      pid: process.pid,
      netnsInode: fs.statSync(hostNetns ?? '/proc/self/ns/net').ino,
      ...(hostNetns !== undefined ? { hostNetns } : {}),
    };
    const r = await askDaemon(path.resolve(socket), body, env);
    if (typeof r === 'string') return warn(r);
    if (!r.ok) return warn(`the daemon declined: ${r.code}: ${r.message}`);
    const listening = new Set((r.listeners ?? []).map((l) => l.address));
    const missing = ep.dns.nameservers.filter((a) => !listening.has(a));
    if (missing.length) {
      const why = (r.problems ?? []).filter((p) => missing.includes(p.address)).map((p) => `${p.address}: ${p.message}`);
      warn(`the daemon does not listen on ${missing.join(', ')}${why.length ? ` (${why.join('; ')})` : ''}`);
    }
  } catch (e) {
    warn((e as Error).message);
  }
}
