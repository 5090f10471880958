/**
 * Suite "memory": the resident memory of a process holding a NetworkHost, idle and with 1,000
 * endpoints connected (bridge mode, one published port each), and so the bytes per endpoint.
 *
 * A child process (bench/memory-child.ts, `node --expose-gc`) opens the NetworkHost in a fresh
 * host namespace and prints VmRSS (from /proc/self/status, after a full GC) at each step:
 * node with nsnet loaded, the NetworkHost idle (open, network created), then 100, 250, 500 and
 * 1,000 endpoints. Three repetitions, each a fresh host namespace and state directory (the
 * 1,000 container namespaces are made once and reused: a repetition's veths go with its host).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { globalBatch, round, run, stats, summarize, withNetns, flushLinks, sleep, type Chart, type Suite, type SuiteOptions, type SummaryRow } from './common';

const STEPS = [100, 250, 500, 1000];
const MiB = 2 ** 20;

interface Reading {
  step: string;
  endpoints: number;
  rss_bytes: number;
  hwm_bytes: number;
  heap_used_bytes: number;
  heap_total_bytes: number;
  external_bytes: number;
  threads: number;
  fds: number;
}

export const memorySuite: Suite = {
  name: 'memory',
  title: 'memory: RSS of a process holding a NetworkHost, idle and with 1,000 endpoints',
  async run(o: SuiteOptions) {
    const reps = Math.max(1, Math.round(3 * o.scale));
    const prefix = `nsm${process.pid}c`;
    const top = STEPS[STEPS.length - 1]!;
    globalBatch(Array.from({ length: top }, (_, i) => `netns add ${prefix}${i + 1}`));
    const runs: Reading[][] = [];
    try {
      for (let r = 0; r < reps; r++) {
        const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-mem-'));
        try {
          const readings = await withNetns((host) => {
            const out = run(process.execPath, ['--expose-gc', path.join(__dirname, 'memory-child.js'), host, prefix, stateDir, STEPS.join(',')]);
            return out.stdout
              .trim()
              .split('\n')
              .map((l) => JSON.parse(l) as Reading);
          }, flushLinks);
          runs.push(readings);
          const idle = readings.find((x) => x.step === 'idle')!;
          const full = readings[readings.length - 1]!;
          o.log(
            `  repetition ${r + 1}/${reps}: idle ${(idle.rss_bytes / MiB).toFixed(1)} MiB, ${full.endpoints} endpoints ${(full.rss_bytes / MiB).toFixed(1)} MiB ` +
              `(${((full.rss_bytes - idle.rss_bytes) / full.endpoints / 1024).toFixed(1)} KiB per endpoint)`,
          );
        } finally {
          fs.rmSync(stateDir, { recursive: true, force: true });
        }
        await sleep(1000);
      }
    } finally {
      globalBatch(Array.from({ length: top }, (_, i) => `netns del ${prefix}${i + 1}`));
    }
    const pick = (step: string, endpoints: number, key: keyof Reading = 'rss_bytes'): number[] =>
      runs.map((rs) => (rs.find((x) => x.step === step && x.endpoints === endpoints)![key] as number) / MiB);
    const perEndpoint = runs.map((rs) => {
      const idle = rs.find((x) => x.step === 'idle')!;
      const full = rs.find((x) => x.endpoints === top && x.step === 'connected')!;
      return (full.rss_bytes - idle.rss_bytes) / top;
    });
    const v = { unit: 'MiB', higher_is_better: false };
    // Every row is nsnet's own (no peer here): no "vs each peer" line.
    const rows: SummaryRow[] = [
      { tool: 'node+nsnet', label: 'node with nsnet loaded, nothing opened', nsnet: true, items: 1, samples: pick('loaded', 0), timing: 'VmRSS' },
      { tool: 'nsnet-idle', label: 'NetworkHost open, one network, no endpoint', items: 1, samples: pick('idle', 0), timing: 'VmRSS' },
      ...STEPS.map((n) => ({
        tool: `nsnet-${n}`,
        label: `NetworkHost with ${n.toLocaleString('en-US')} endpoints (bridge, 1 published port each)`,
        items: 1,
        samples: pick('connected', n),
        timing: 'VmRSS',
      })),
    ];
    const heapRows: SummaryRow[] = [
      { tool: 'nsnet-idle', label: 'JS heap used, idle', items: 1, samples: pick('idle', 0, 'heap_used_bytes'), timing: 'heapUsed' },
      {
        tool: `nsnet-${top}`,
        label: `JS heap used, ${top.toLocaleString('en-US')} endpoints`,
        items: 1,
        samples: pick('connected', top, 'heap_used_bytes'),
        timing: 'heapUsed',
      },
      { tool: 'nsnet-idle-total', label: 'JS heap reserved (heapTotal), idle', items: 1, samples: pick('idle', 0, 'heap_total_bytes'), timing: 'heapTotal' },
      {
        tool: `nsnet-${top}-total`,
        label: `JS heap reserved (heapTotal), ${top.toLocaleString('en-US')} endpoints`,
        items: 1,
        samples: pick('connected', top, 'heap_total_bytes'),
        timing: 'heapTotal',
      },
    ];
    const med = (s: number[]): number => stats(s).median;
    const charts: Chart[] = [
      {
        id: 'rss',
        title: 'resident memory of the process against endpoints connected',
        x_label: 'endpoints',
        y_label: 'MiB (VmRSS after a full GC; median of repetitions)',
        log_x: false,
        series: [
          {
            name: 'nsnet',
            nsnet: true,
            points: [
              { x: 0, y: round(med(pick('idle', 0)), 1) },
              ...STEPS.map((n) => ({ x: n, y: round(med(pick('connected', n)), 1), p95: round(Math.max(...pick('connected', n)), 1) })),
            ],
          },
        ],
      },
    ];
    const per = med(perEndpoint);
    const heapPer = med(
      runs.map(
        (rs) => (rs.find((x) => x.endpoints === top && x.step === 'connected')!.heap_used_bytes - rs.find((x) => x.step === 'idle')!.heap_used_bytes) / top,
      ),
    );
    const last = runs[0]!.find((x) => x.endpoints === top && x.step === 'connected')!;
    const idle0 = runs[0]!.find((x) => x.step === 'idle')!;
    return {
      workloads: [
        {
          id: 'rss',
          bars: true,
          title: 'resident set size (VmRSS)',
          unit: 'process',
          reference: 'nsnet-idle',
          value: v,
          note: `${reps} repetitions, each a fresh process and host namespace. vs ref: idle divided by the row (below 1.00: more memory than idle).`,
          tools: summarize(rows, 'nsnet-idle', v),
        },
        {
          id: 'heap',
          title: 'JS heap used',
          unit: 'process',
          reference: 'nsnet-idle',
          value: v,
          note: 'process.memoryUsage().heapUsed after a full GC.',
          tools: summarize(heapRows, 'nsnet-idle', v),
        },
      ],
      targets: [],
      charts,
      notes: [
        `Bytes per endpoint: (RSS with ${top.toLocaleString('en-US')} endpoints − RSS idle) / ${top.toLocaleString('en-US')} = ${(per / 1024).toFixed(1)} KiB ` +
          `(repetitions: ${perEndpoint.map((b) => `${(b / 1024).toFixed(1)}`).join(', ')} KiB), of which the JS heap holds ${(heapPer / 1024).toFixed(1)} KiB: the rest is outside the JS heap ` +
          `(V8's reserved heap, native allocations). Threads ${idle0.threads} idle, ${last.threads} with ${top.toLocaleString('en-US')} endpoints; open fds ${idle0.fds} → ${last.fds}. No target was set for memory; it is reported to be watched.`,
      ],
      bytes_per_endpoint: Math.round(per),
      readings: runs,
    };
  },
};
