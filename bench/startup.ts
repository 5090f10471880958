/**
 * Suite "startup": what starting nsnet costs a process, against a bare `node -e 0` in the same
 * run (issue 18: `nsnet` commands and `require('nsnet')` at most 2× that).
 *
 *   node -e 0                     the reference: node itself
 *   nsnet --version, --help       the CLI as users run it (bin/nsnet through its #! line)
 *   require('nsnet')              `node -e "require('nsnet')"` from the package (its "exports")
 *   require('nsnet').NetworkHost  the same, then reading the export that loads most of nsnet
 *   nsnet network ls              a command that opens a NetworkHost (store, netlink and
 *                                 nftables handles) in a fresh namespace: start-up plus work
 *   /bin/true                     what starting any process costs the harness
 *
 * Every row is a whole process, 21 runs after one discarded warm-up, the rows taking turns run
 * by run so that load on the machine hits them alike.
 *
 *   node scripts/sandbox.js -- node dist/bench/run.js startup [--quick]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ROOT, now, stats, summarize, withNetns, type Suite, type SuiteOptions, type TargetResult } from './common';

const BIN = path.join(ROOT, 'bin', 'nsnet');

interface Row {
  tool: string;
  label: string;
  nsnet: boolean;
  cmd: string;
  args: string[];
  target: boolean;
}

/** Runs a process to completion in `cwd`, output discarded; its ms. Throws unless it exits 0. */
function timed(cmd: string, args: string[], cwd: string): number {
  const t0 = now();
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = now() - t0;
  if (r.error || r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? `exit ${r.status}: ${r.stderr}`}`);
  return ms;
}

export const startupSuite: Suite = {
  name: 'startup',
  title: "start-up: nsnet commands and require('nsnet') as processes vs node -e 0",
  async run(o: SuiteOptions) {
    const runs = Math.max(5, Math.round(21 * o.scale));
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-startup-'));
    try {
      return await withNetns(async (ns) => {
        const rows: Row[] = [
          { tool: 'node-e-0', label: 'node -e 0', nsnet: false, cmd: process.execPath, args: ['-e', '0'], target: false },
          { tool: 'true', label: '/bin/true', nsnet: false, cmd: '/bin/true', args: [], target: false },
          { tool: 'nsnet-version', label: 'nsnet --version', nsnet: true, cmd: BIN, args: ['--version'], target: true },
          { tool: 'nsnet-help', label: 'nsnet --help', nsnet: true, cmd: BIN, args: ['--help'], target: true },
          { tool: 'require-nsnet', label: 'node -e "require(\'nsnet\')"', nsnet: true, cmd: process.execPath, args: ['-e', "require('nsnet')"], target: true },
          {
            tool: 'require-networkhost',
            label: 'node -e "require(\'nsnet\').NetworkHost" (loads most of nsnet)',
            nsnet: true,
            cmd: process.execPath,
            args: ['-e', "require('nsnet').NetworkHost"],
            target: false,
          },
          {
            tool: 'nsnet-network-ls',
            label: 'nsnet network ls (opens a NetworkHost: start-up plus work)',
            nsnet: true,
            cmd: BIN,
            args: ['--state-dir', stateDir, '--host-netns', ns, 'network', 'ls'],
            target: false,
          },
        ];
        const samples: Record<string, number[]> = Object.fromEntries(rows.map((r) => [r.tool, []]));
        for (let i = 0; i <= runs; i++) {
          for (const r of rows) {
            const ms = timed(r.cmd, r.args, ROOT);
            if (i > 0) samples[r.tool]!.push(ms); // run 0 warms the page cache
          }
        }
        const med = (t: string): number => stats(samples[t]!).median;
        o.log(`  ${rows.map((r) => `${r.tool} ${med(r.tool).toFixed(1)} ms`).join(', ')}`);
        const ref = med('node-e-0');
        const targets: TargetResult[] = rows
          .filter((r) => r.target)
          .map((r) => ({
            id: `startup-${r.tool}`,
            text: `\`${r.label}\` as a process takes at most 2× \`node -e 0\``,
            met: med(r.tool) <= 2 * ref,
            detail: `${med(r.tool).toFixed(1)} ms vs node -e 0 ${ref.toFixed(1)} ms = ${(med(r.tool) / ref).toFixed(2)}×`,
          }));
        const info = ['require-networkhost', 'nsnet-network-ls']
          .map((t) => `${rows.find((r) => r.tool === t)!.label}: ${med(t).toFixed(1)} ms = ${(med(t) / ref).toFixed(2)}×`)
          .join('; ');
        return {
          workloads: [
            {
              id: 'startup',
              title: 'a process that starts nsnet',
              unit: 'process',
              reference: 'node-e-0',
              note: `${runs} runs each (one warm-up discarded), the rows taking turns; whole processes, output discarded. vs ref above 1.00 is faster than node -e 0, 0.50 is 2× its time.`,
              tools: summarize(
                rows.map((r) => ({ tool: r.tool, label: r.label, nsnet: r.nsnet, items: 1, samples: samples[r.tool]!, timing: 'whole process' })),
                'node-e-0',
              ),
            },
          ],
          targets,
          notes: [
            `Start-up of what loads the rest of nsnet, for scale (no target): ${info}. Node ${process.version} has no compile cache for user code ` +
              '(module.enableCompileCache() is Node 22.1+; bin/nsnet turns it on there): nsnet loads each module when first used instead.',
          ],
        };
      });
    } finally {
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  },
};
