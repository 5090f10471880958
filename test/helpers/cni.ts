/**
 * Runs CNI plugins exactly as a runtime (libcni) does: one process per invocation, the
 * CNI_* variables in its environment, the configuration on stdin, the result (or error JSON)
 * on stdout, diagnostics on stderr, success as exit status 0. Optionally under
 * `ip netns exec HOST` (the plugin then runs in HOST, as it would on a real host).
 *
 * nsnet-cni is run as the native client (build/Release/nsnet-cni) either against a daemon
 * started for the test (`daemon`) or with NSNET_CNI_SOCKET=none (`fallback`: the client execs
 * node and the plugin runs in process). The client's autostart is off unless a test turns it
 * on (NSNET_CNI_AUTOSTART=1 in `env`); daemonsOf() finds the daemons it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { registerCleanup, uniqueName } from './sandbox';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const CLIENT = path.join(ROOT, 'build', 'Release', 'nsnet-cni');
export const LAUNCHER = path.join(ROOT, 'bin', 'nsnet-cni');
export const CNI_PATH = '/usr/lib/cni';

export type Mode = 'daemon' | 'fallback';

export interface Invocation {
  command: string;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  /** The configuration: an object (serialized) or raw stdin text. */
  config: unknown;
  /** The executable (default: the nsnet-cni client). */
  plugin?: string;
  /** Run under `ip netns exec HOST`. */
  host?: string;
  /** Extra or overriding environment (a value of undefined removes a variable). */
  env?: Record<string, string | undefined>;
}

export interface Outcome {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  /** stdout parsed, when it is JSON. */
  json?: any;
}

/** The environment a runtime gives a plugin: its own (a small one here) plus the CNI_* variables. */
function environment(inv: Invocation, socket: string | undefined): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    NSNET_CNI_SOCKET: socket ?? 'none',
    // A client that finds no daemon would start one: tests that mean it say so (inv.env).
    NSNET_CNI_AUTOSTART: '0',
    CNI_COMMAND: inv.command,
    CNI_PATH,
  };
  if (inv.containerId !== undefined) env.CNI_CONTAINERID = inv.containerId;
  if (inv.netns !== undefined) env.CNI_NETNS = inv.netns;
  if (inv.ifname !== undefined) env.CNI_IFNAME = inv.ifname;
  if (inv.args !== undefined) env.CNI_ARGS = inv.args;
  Object.assign(env, inv.env ?? {});
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

/** Runs one plugin invocation to completion. `socket`: the daemon's (undefined: no daemon). */
export function invoke(inv: Invocation, socket?: string): Promise<Outcome> {
  const plugin = inv.plugin ?? CLIENT;
  const [cmd, args] = inv.host ? ['ip', ['netns', 'exec', inv.host, plugin]] : [plugin, []];
  const stdin = typeof inv.config === 'string' ? inv.config : JSON.stringify(inv.config);
  return new Promise((resolve, reject) => {
    const p = spawn(cmd as string, args as string[], { env: environment(inv, socket), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => {
      stdout += d;
    });
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    p.on('error', reject);
    p.stdin.on('error', () => undefined); // a plugin may exit without reading stdin (VERSION)
    p.stdin.end(stdin);
    p.on('close', (exitCode) => {
      let json: unknown;
      try {
        json = stdout.trim() ? JSON.parse(stdout) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ stdout, stderr, exitCode, ...(json !== undefined ? { json } : {}) });
    });
  });
}

/** A daemon for one test (its own socket), stopped afterwards. */
export async function startTestDaemon(
  opts: { idleTimeout?: number } = {},
): Promise<{ socket: string; process: ChildProcess; stop(): Promise<void>; log(): string }> {
  const dir = path.join('/run', uniqueName('nscni'));
  const socket = path.join(dir, 'cni.sock');
  const args = [path.join(ROOT, 'dist', 'lib', 'cni', 'daemon.js'), '--socket', socket];
  if (opts.idleTimeout !== undefined) args.push('--idle-timeout', String(opts.idleTimeout));
  const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (d) => {
    err += d;
  });
  await new Promise<void>((resolve, reject) => {
    p.stdout!.once('data', () => resolve());
    p.once('exit', (code) => reject(new Error(`the daemon exited ${code}: ${err}`)));
  });
  const stop = async (): Promise<void> => {
    if (p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await gone;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  registerCleanup(stop, 'stop the nsnet-cni daemon');
  return { socket, process: p, stop, log: () => err };
}

/**
 * Removes a state directory that a daemon may still follow: its DNS resolver reads the store
 * when the directory changes, and a read takes the store's shared lock, which creates `.lock`
 * again if the removal just unlinked it (then rmdir fails with ENOTEMPTY). The whole removal is
 * retried until the directory is gone (the daemon drops a resolver whose directory vanished).
 */
export async function removeStateDir(d: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOTEMPTY' || i >= 100) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** A temporary state directory, removed afterwards. */
export function tempStateDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-cni-'));
  registerCleanup(() => removeStateDir(d), 'remove the state dir');
  return d;
}

/** A 64-hex container id like a runtime's. */
export function containerId(tag: string): string {
  return Buffer.from(`${tag}-${process.pid}-${Math.random()}`).toString('hex').padEnd(64, '0').slice(0, 64);
}

/** A daemon process: its pid, parent, session, and command line. */
export interface DaemonProcess {
  pid: number;
  ppid: number;
  sid: number;
  /** The controlling terminal (0: none). */
  tty: number;
  args: string[];
}

/** The live (not zombie) nsnet daemon processes serving `socket`, from /proc. */
export function daemonsOf(socket: string): DaemonProcess[] {
  const out: DaemonProcess[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/u.test(d)) continue;
    let args: string[];
    let stat: string;
    try {
      args = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').filter(Boolean);
      stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    if (!args.some((a) => a.endsWith('daemon.js') || a === 'daemon') || !args.includes(socket)) continue;
    // pid (comm) state ppid pgrp session tty_nr ...: comm may hold spaces, so split after ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (f[0] === 'Z' || f[0] === 'X') continue;
    out.push({ pid: Number(d), ppid: Number(f[1]), sid: Number(f[3]), tty: Number(f[4]), args });
  }
  return out;
}

/** A socket path in a directory of its own that does not exist yet; daemons on it are stopped afterwards. */
export function freshSocket(): string {
  const dir = path.join('/run', uniqueName('nsauto'));
  const socket = path.join(dir, 'cni.sock');
  registerCleanup(async () => {
    for (const d of daemonsOf(socket)) {
      try {
        process.kill(d.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await waitFor(() => daemonsOf(socket).length === 0, 10000, 'the daemons to die');
    fs.rmSync(dir, { recursive: true, force: true });
  }, 'stop the autostarted daemons');
  return socket;
}

/** Waits until cond() holds (polling every 50 ms); false when `ms` passed first. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, _what = ''): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}
