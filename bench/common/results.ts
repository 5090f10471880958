/**
 * What a suite returns and the bench writes to bench/results/: the result types, and the
 * summary of raw samples into rows with rates and ratios.
 */
import { round, stats } from './measure';

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
      ...(medians.length > 1
        ? { repetitions: { medians: medians.map((m) => round(m, 3)), spread: round((Math.max(...medians) - Math.min(...medians)) / repMed, 3) } }
        : {}),
      timing: r.timing,
      ...(r.note ? { note: r.note } : {}),
    } as ToolResult;
  });
  const ref = out.find((r) => r.tool === reference);
  const faster = (a: ToolResult, b: ToolResult): number => (better ? a.median_ms / b.median_ms : b.median_ms / b.items / (a.median_ms / a.items));
  for (const r of out) r.ratio_vs_ref = ref ? round(faster(r, ref), 3) : NaN;
  for (const r of out.filter((x) => x.nsnet)) {
    const peers = out.filter((x) => !x.nsnet);
    if (peers.length) r.vs_peers = Object.fromEntries(peers.map((p) => [p.tool, round(faster(r, p), 3)]));
  }
  return out;
}

/** The result of one tool in one workload, or an error naming what is missing. */
export function resultOf(w: Record<string, WorkloadResult>, workload: string, tool: string): WorkloadResult['tools'][number] {
  const r = w[workload]?.tools.find((x) => x.tool === tool);
  if (!r) throw new Error(`no result for ${workload}/${tool}`);
  return r;
}
