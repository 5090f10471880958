/**
 * Shared plumbing of the benchmark suites: the sandbox check, timing and statistics,
 * throw-away network namespaces, running peer tools as processes, and the result types.
 *
 * Everything here runs inside the private namespaces made by scripts/sandbox.js; nothing may
 * touch the machine's own network namespace.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';

/** The package root (dist/bench/common.js sits two levels below it). */
export const ROOT = findRoot(__dirname);
export const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
/** The Debian python, the one python3-pyroute2 is installed for. */
export const PYTHON = '/usr/bin/python3';

function findRoot(dir: string): string {
  for (let d = dir; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json')) && fs.existsSync(path.join(d, 'bench'))) return d;
    if (path.dirname(d) === d) throw new Error(`bench: cannot find the package root above ${dir}`);
  }
}

/** The inode of the calling thread's network namespace, as a string. */
export function netnsInode(): string {
  return String(fs.statSync('/proc/self/ns/net').ino);
}

/**
 * Refuses to go on unless we run inside the sandbox of scripts/sandbox.js, which sets
 * NSNET_SANDBOX to the inode of its private network namespace.
 */
export function assertSandbox(): void {
  if (process.env.NSNET_SANDBOX !== netnsInode()) {
    process.stderr.write(
      'bench: refusing to run outside the private network namespace of the sandbox (NSNET_SANDBOX does not\n' +
        "       name this network namespace). The benchmarks create and delete thousands of links; they must\n" +
        "       never run in the machine's own namespace. Run them with:  npm run bench [-- SUITE...]\n",
    );
    process.exit(2);
  }
}

// ---------------------------------------------------------------------------------------------
// Timing and statistics

export function now(): number {
  return performance.now();
}

export interface Stats {
  median: number;
  p95: number;
  min: number;
  max: number;
  mean: number;
}

/** Median (mean of the middle two for an even count) and nearest-rank p95. */
export function stats(samples: number[]): Stats {
  if (samples.length === 0) throw new Error('stats of no samples');
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  const p95 = s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)]!;
  return { median, p95, min: s[0]!, max: s[s.length - 1]!, mean: s.reduce((a, b) => a + b, 0) / s.length };
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// ---------------------------------------------------------------------------------------------
// Processes

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
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${String(r.stderr ?? '').trim().slice(0, 2000)}`);
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

/** Runs `ip -n NS -batch -` with the given lines on stdin (for untimed setup work). */
export function ipBatch(ns: string, lines: string[]): void {
  if (lines.length) run('ip', ['-n', ns, '-batch', '-'], { input: lines.join('\n') + '\n' });
}

/**
 * Runs a python script with the Debian python inside a namespace (`ip netns exec`), and parses
 * the JSON it prints on its last line.
 */
export function python<T>(ns: string, script: string, args: (string | number)[]): T {
  const r = run('ip', ['netns', 'exec', ns, PYTHON, '-c', script, ...args.map(String)]);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`python printed no JSON: ${r.stdout.slice(0, 500)} ${r.stderr.slice(0, 500)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Throw-away namespaces

let nsCounter = 0;

/** Names of the namespaces this process made and has not deleted yet. */
const liveNamespaces = new Set<string>();

/**
 * Runs `fn` in a fresh named network namespace (`ip netns add`), then deletes it. `cleanup`
 * runs before the delete; use it to remove many links synchronously, so the kernel's
 * asynchronous namespace teardown has little left to do and does not overlap the next
 * measurement.
 */
export async function withNetns<T>(fn: (ns: string) => Promise<T> | T, cleanup?: (ns: string) => void): Promise<T> {
  const ns = `nsb${process.pid}x${++nsCounter}`;
  run('ip', ['netns', 'add', ns]);
  liveNamespaces.add(ns);
  try {
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    return await fn(ns);
  } finally {
    try {
      cleanup?.(ns);
    } finally {
      run('ip', ['netns', 'del', ns]);
      liveNamespaces.delete(ns);
    }
  }
}

/** Deletes any namespace still left (after an error). */
export function deleteLeftNamespaces(): void {
  for (const ns of liveNamespaces) {
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    liveNamespaces.delete(ns);
  }
}

/**
 * Removes every link of a namespace but lo in one kernel operation: put them in a group, then
 * `ip link del group`. Veth peers go with their other end.
 */
export function flushLinks(ns: string, group = 4242): void {
  const r = run('ip', ['-n', ns, '-o', 'link', 'show']);
  const names = r.stdout
    .split('\n')
    .map((l) => /^\d+:\s+([^:@\s]+)/u.exec(l)?.[1])
    .filter((n): n is string => n !== undefined && n !== 'lo');
  if (names.length === 0) return;
  ipBatch(ns, names.map((n) => `link set ${n} group ${group}`));
  run('ip', ['-n', ns, 'link', 'del', 'group', String(group)]);
}

/** The number of links in a namespace. */
export function countLinks(ns: string): number {
  return run('ip', ['-n', ns, '-o', 'link', 'show']).stdout.split('\n').filter((l) => l.trim()).length;
}

// ---------------------------------------------------------------------------------------------
// Results

export interface ToolResult {
  /** Short stable id: 'nsnet-single', 'ip-batch', ... */
  tool: string;
  /** What was run, for humans. */
  label: string;
  /** Whether this row is nsnet (drawn in colour). */
  nsnet: boolean;
  /** Work items per run (links created, deleted or listed). */
  items: number;
  runs: number;
  samples_ms: number[];
  median_ms: number;
  p95_ms: number;
  /** Items per second at the median. */
  rate_per_s: number;
  /** This tool's rate divided by the reference tool's rate (> 1: faster than the reference). */
  ratio_vs_ref: number;
  /** How it was timed: 'in process' or 'whole process'. */
  timing: string;
  note?: string;
}

export interface WorkloadResult {
  id: string;
  title: string;
  /** What one item is ('link', 'veth pair'). */
  unit: string;
  /** Tool id of the reference peer. */
  reference: string;
  note?: string;
  tools: ToolResult[];
}

export interface TargetResult {
  id: string;
  text: string;
  met: boolean;
  detail: string;
}

export interface SuiteResult {
  suite: string;
  title: string;
  machine: Record<string, unknown>;
  duration_s: number;
  workloads: WorkloadResult[];
  targets: TargetResult[];
}

export interface Suite {
  name: string;
  title: string;
  run(opts: SuiteOptions): Promise<Omit<SuiteResult, 'machine' | 'duration_s' | 'suite' | 'title'>>;
}

export interface SuiteOptions {
  /** Multiplies the number of runs (at least 1 run each); 1 by default. */
  scale: number;
  log: (msg: string) => void;
}

/** Builds the ToolResult rows of a workload from raw samples, with rates and ratios. */
export function summarize(
  rows: { tool: string; label: string; nsnet?: boolean; items: number; samples: number[]; timing: string; note?: string }[],
  reference: string,
): ToolResult[] {
  const out = rows.map((r) => {
    const s = stats(r.samples);
    return {
      tool: r.tool,
      label: r.label,
      nsnet: r.nsnet ?? r.tool.startsWith('nsnet'),
      items: r.items,
      runs: r.samples.length,
      samples_ms: r.samples.map((x) => round(x, 3)),
      median_ms: round(s.median, 3),
      p95_ms: round(s.p95, 3),
      rate_per_s: round((r.items * 1000) / s.median, 1),
      ratio_vs_ref: 0,
      timing: r.timing,
      ...(r.note ? { note: r.note } : {}),
    } as ToolResult;
  });
  const ref = out.find((r) => r.tool === reference);
  for (const r of out) r.ratio_vs_ref = ref ? round(r.rate_per_s / ref.rate_per_s, 3) : NaN;
  return out;
}

/** Facts about the machine the numbers were measured on. */
export function machineFacts(): Record<string, unknown> {
  const cpus = os.cpus();
  const version = (cmd: string, args: string[]): string => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return r.status === 0 ? String(r.stdout).trim() : 'unavailable';
  };
  // What it costs this harness to run a process that does nothing: part of every
  // "whole process" time.
  const spawnMs: number[] = [];
  for (let i = 0; i < 11; i++) spawnMs.push(run('/bin/true', []).ms);
  return {
    date: new Date().toISOString(),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    cpu_count: cpus.length,
    cpu_model: cpus[0]?.model ?? 'unknown',
    memory_gb: round(os.totalmem() / 2 ** 30, 1),
    loadavg_1m: round(os.loadavg()[0] ?? 0, 2),
    iproute2: version('ip', ['-V']),
    pyroute2: version('dpkg-query', ['-W', '-f', '${Version}', 'python3-pyroute2']),
    python: version(PYTHON, ['-c', 'import sys; print(sys.version.split()[0])']),
    nsnet: (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
    spawn_true_median_ms: round(stats(spawnMs).median, 3),
  };
}

/** The result of one tool in one workload, or an error naming what is missing. */
export function resultOf(w: Record<string, WorkloadResult>, workload: string, tool: string): WorkloadResult['tools'][number] {
  const r = w[workload]?.tools.find((x) => x.tool === tool);
  if (!r) throw new Error(`no result for ${workload}/${tool}`);
  return r;
}
