/** Running the peer tools (and helpers) as processes, timed or not, and temporary files. */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { now, sleep } from './measure';
import { PEER_MODULES, PYTHON } from './paths';

export interface RunResult {
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs a process to completion and times it (wall clock around spawn-to-exit). Throws if it
 * fails. With `discardStdout`, stdout goes to /dev/null (a tool's output is then not even
 * copied into this process, the cheapest way to run it).
 */
export function run(cmd: string, args: string[], opts: { input?: string; discardStdout?: boolean; env?: NodeJS.ProcessEnv } = {}): RunResult {
  let devnull: number | undefined;
  try {
    const o: SpawnSyncOptions = { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, env: opts.env ?? process.env };
    if (opts.discardStdout) {
      devnull = fs.openSync('/dev/null', 'w');
      o.stdio = [opts.input === undefined ? 'ignore' : 'pipe', devnull, 'pipe'];
    } else {
      o.stdio = [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'];
    }
    if (opts.input !== undefined) o.input = opts.input;
    const t0 = now();
    const r = spawnSync(cmd, args, o);
    const ms = now() - t0;
    if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
    if (r.status !== 0)
      throw new Error(
        `${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${String(r.stderr ?? '')
          .trim()
          .slice(0, 2000)}`,
      );
    return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), ms };
  } finally {
    if (devnull !== undefined) fs.closeSync(devnull);
  }
}

/** Runs a process and returns true if it exited 0 (no throw). */
export function succeeds(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

/** Writes a temporary file (removed by the caller with rmTemp) and returns its path. */
export function tempFile(name: string, content: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-'));
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

export function rmTemp(p: string): void {
  fs.rmSync(path.dirname(p), { recursive: true, force: true });
}

/** The JSON a script printed on its last line of stdout. */
function lastJson<T>(who: string, r: RunResult): T {
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`${who} printed no JSON: ${r.stdout.slice(0, 500)} ${r.stderr.slice(0, 500)}`);
  }
}

/**
 * Runs a python script with the Debian python inside a namespace (`ip netns exec`), and parses
 * the JSON it prints on its last line.
 */
export function python<T>(ns: string, script: string, args: (string | number)[]): T {
  return lastJson<T>('python', run('ip', ['netns', 'exec', ns, PYTHON, '-c', script, ...args.map(String)]));
}

/**
 * Runs a node script (source text) inside a namespace (`ip netns exec`) and parses the JSON it
 * prints on its last line: for timing a JavaScript peer in process, inside the namespace.
 */
export function nodeIn<T>(ns: string, script: string, args: (string | number)[]): T {
  const r = run('ip', ['netns', 'exec', ns, process.execPath, '-e', script, ...args.map(String)], { env: { ...process.env, NODE_PATH: PEER_MODULES } });
  return lastJson<T>('node', r);
}

/** A long-running process this bench started (a server), stopped by its pid only. */
export interface Background {
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `ip netns exec NS CMD…` in the background; its output is discarded unless it fails early. */
export async function startIn(ns: string, cmd: string[], readyMs = 300): Promise<Background> {
  const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => void (stderr += d.toString()));
  let exited: number | null | undefined;
  child.on('exit', (code) => void (exited = code));
  await sleep(readyMs);
  if (exited !== undefined) throw new Error(`${cmd.join(' ')} in ${ns} exited ${String(exited)}: ${stderr.trim().slice(0, 500)}`);
  return {
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited !== undefined || child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => {
          if (child.exitCode === null) child.kill('SIGKILL');
        }, 2000).unref();
      }),
  };
}
