/** Timing, statistics, and the loop that runs tools taking turns. */
import { performance } from 'node:perf_hooks';

export function now(): number {
  return performance.now();
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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

/** One run of one tool: does the work and returns the ms it took. */
export type Measure = () => Promise<number>;

/**
 * Runs each tool `runs` times (plus `warmup` discarded runs), tools taking turns run by run so
 * that the drift of a shared machine spreads over all of them; returns the samples by tool.
 */
export async function rounds(
  tools: Record<string, Measure>,
  runs: number,
  warmup: number,
  log: (m: string) => void,
  what: string,
): Promise<Record<string, number[]>> {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(tools).map((k) => [k, []]));
  for (let r = 0; r < warmup + runs; r++) {
    for (const [name, measure] of Object.entries(tools)) {
      const ms = await measure();
      if (r >= warmup) samples[name]!.push(ms);
      log(`  ${what} ${r < warmup ? 'warm-up' : `run ${r - warmup + 1}/${runs}`} ${name}: ${ms.toFixed(1)} ms`);
    }
  }
  return samples;
}
