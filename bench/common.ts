/**
 * Shared plumbing of the benchmark suites: the sandbox check, timing and statistics,
 * throw-away network namespaces, running peer tools as processes, and the result types.
 *
 * Everything here runs inside the private namespaces made by scripts/sandbox.js; nothing may
 * touch the machine's own network namespace.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';

/** The package root (dist/bench/common.js sits two levels below it). */
export const ROOT = findRoot(__dirname);
export const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
/** The Debian python, the one python3-pyroute2 is installed for. */
export const PYTHON = '/usr/bin/python3';
/**
 * npm packages the bench compares with but nsnet does not depend on (the npm `netlink`
 * package): installed by scripts/bench-peers.sh into bench/.peers (git-ignored), outside the
 * sandbox (it has no network). Not a devDependency: node_modules is shared with the other
 * checkouts of the project, and nothing but the bench needs it.
 */
export const PEER_MODULES = path.join(ROOT, 'bench', '.peers', 'node_modules');

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
  /**
   * The samples, in ms — or, when the workload has a `value` unit (throughput, memory,
   * microseconds), in that unit; so are median_ms and p95_ms then.
   */
  samples_ms: number[];
  median_ms: number;
  /** The slow end: the 95th percentile of times; for a higher-is-better value, the 5th percentile. */
  p95_ms: number;
  /** Items per second at the median. */
  rate_per_s: number;
  /** This tool's rate divided by the reference tool's rate (> 1: faster than the reference). */
  ratio_vs_ref: number;
  /**
   * nsnet rows only: how many times faster (or better) than each non-nsnet row of the workload,
   * by median (peer time / nsnet time; for higher-is-better values nsnet / peer).
   */
  vs_peers?: Record<string, number>;
  /**
   * The noise between repetitions: the median of each repetition (a run, a round, a fresh host),
   * and their spread, (max - min) / median of those medians. Absent with a single repetition.
   */
  repetitions?: { medians: number[]; spread: number };
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
  /** Set when the samples are not times in ms: their unit and which way is better. */
  value?: { unit: string; higher_is_better: boolean };
  /** Draw this workload as a bar chart in the suite's SVG even though the suite has line charts. */
  bars?: boolean;
  tools: ToolResult[];
}

export interface TargetResult {
  id: string;
  text: string;
  met: boolean;
  /** 'not measured': the thing cannot be measured in this build (met is then false). */
  status?: 'met' | 'missed' | 'not measured';
  detail: string;
}

/** A line chart: one line per tool, y (median, with a p95 whisker) against x (a scale). */
export interface Chart {
  id: string;
  title: string;
  x_label: string;
  y_label: string;
  /** Log scale on x (scales of 1, 10, 100, 1,000 …). */
  log_x?: boolean;
  series: { name: string; nsnet: boolean; points: { x: number; y: number; p95?: number; label?: string }[] }[];
  note?: string;
}

export interface SuiteResult {
  suite: string;
  title: string;
  machine: Record<string, unknown>;
  duration_s: number;
  workloads: WorkloadResult[];
  targets: TargetResult[];
  /** Line charts of the suite (latency against scale); suites without them get bar charts. */
  charts?: Chart[];
  /** Paragraphs for latest.md: how a figure was obtained (e.g. the proof of a replayed state). */
  notes?: string[];
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

export interface SummaryRow {
  tool: string;
  label: string;
  nsnet?: boolean;
  items: number;
  samples: number[];
  timing: string;
  note?: string;
  /**
   * The samples grouped by repetition (a round, a fresh host): the spread between their medians
   * is reported. Without it, every sample counts as a repetition of its own.
   */
  groups?: number[][];
}

/**
 * Builds the ToolResult rows of a workload from raw samples, with rates, ratios against the
 * reference and — for nsnet rows — against every other row, and the spread between
 * repetitions. `value`: the samples are not ms (their unit, and whether higher is better).
 */
export function summarize(rows: SummaryRow[], reference: string, value?: { unit: string; higher_is_better: boolean }): ToolResult[] {
  const better = value?.higher_is_better ?? false;
  const out = rows.map((r) => {
    const s = stats(r.samples);
    const sorted = [...r.samples].sort((a, b) => a - b);
    // The slow end: p95 of times, p5 of a higher-is-better value.
    const slow = better ? sorted[Math.max(0, Math.floor(0.05 * sorted.length))]! : s.p95;
    const groups = r.groups?.filter((g) => g.length) ?? (r.samples.length > 1 ? r.samples.map((x) => [x]) : []);
    const medians = groups.map((g) => stats(g).median);
    const repMed = medians.length ? stats(medians).median : 0;
    return {
      tool: r.tool,
      label: r.label,
      nsnet: r.nsnet ?? r.tool.startsWith('nsnet'),
      items: r.items,
      runs: r.samples.length,
      samples_ms: r.samples.map((x) => round(x, 3)),
      median_ms: round(s.median, 3),
      p95_ms: round(slow, 3),
      rate_per_s: round(better ? s.median : (r.items * 1000) / s.median, 1),
      ratio_vs_ref: 0,
      ...(medians.length > 1 ? { repetitions: { medians: medians.map((m) => round(m, 3)), spread: round((Math.max(...medians) - Math.min(...medians)) / repMed, 3) } } : {}),
      timing: r.timing,
      ...(r.note ? { note: r.note } : {}),
    } as ToolResult;
  });
  const ref = out.find((r) => r.tool === reference);
  const faster = (a: ToolResult, b: ToolResult): number => (better ? a.median_ms / b.median_ms : (b.median_ms / b.items) / (a.median_ms / a.items));
  for (const r of out) r.ratio_vs_ref = ref ? round(faster(r, ref), 3) : NaN;
  for (const r of out.filter((x) => x.nsnet)) {
    const peers = out.filter((x) => !x.nsnet);
    if (peers.length) r.vs_peers = Object.fromEntries(peers.map((p) => [p.tool, round(faster(r, p), 3)]));
  }
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

// ---------------------------------------------------------------------------------------------
// More process helpers

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs a node script (source text) inside a namespace (`ip netns exec`) and parses the JSON it
 * prints on its last line: for timing a JavaScript peer in process, inside the namespace.
 */
export function nodeIn<T>(ns: string, script: string, args: (string | number)[]): T {
  const r = run('ip', ['netns', 'exec', ns, process.execPath, '-e', script, ...args.map(String)], { env: { ...process.env, NODE_PATH: PEER_MODULES } });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`node printed no JSON: ${r.stdout.slice(0, 500)} ${r.stderr.slice(0, 500)}`);
  }
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
    stop: () => new Promise<void>((resolve) => {
      if (exited !== undefined || child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => { if (child.exitCode === null) child.kill('SIGKILL'); }, 2000).unref();
    }),
  };
}

/** `ip -batch -` from the bench's own namespace (for `netns add|del` lines). */
export function globalBatch(lines: string[]): void {
  if (lines.length) run('ip', ['-batch', '-'], { input: lines.join('\n') + '\n' });
}
