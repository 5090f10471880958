/**
 * The benchmark runner: `npm run bench [-- SUITE... ] [--quick]`.
 *
 * Runs the named suites (all by default) inside the private namespaces of scripts/sandbox.js
 * and writes bench/results/<suite>.json, <suite>.svg and latest.md.
 *
 *   --list     print the suite names and exit
 *   --quick    a third of the runs (for trying the bench out; the numbers are noisier)
 */
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  PYTHON, ROOT, assertSandbox, deleteLeftNamespaces, machineFacts, now, round, run, succeeds,
  type Suite, type SuiteResult,
} from './common';
import { writeLatest, writeSuite } from './report';

/**
 * The suites, by name. Loaded only after the sandbox check: loading nsnet loads the addon, and
 * nothing of it should run outside the sandbox.
 */
const SUITES: Record<string, { title: string; load: () => Promise<Suite> }> = {
  rtnetlink: { title: 'links over rtnetlink: nsnet vs iproute2 and pyroute2', load: async () => (await import('./rtnetlink')).rtnetlink },
  nft: { title: 'nf_tables map elements: nsnet vs nft -f', load: async () => (await import('./nft')).nftSuite },
  bridge: { title: 'bridge mode: container connect/disconnect, nsnet vs CNI plugins and netavark', load: async () => (await import('./bridge')).bridgeSuite },
};

function usage(code: number): never {
  process.stderr.write(`usage: npm run bench [-- [--quick] [--list] [SUITE...]]\nsuites: ${Object.keys(SUITES).join(', ')}\n`);
  process.exit(code);
}

/** Installs the peers (Debian packages) if pyroute2 is missing. */
function ensurePeers(): void {
  if (succeeds(PYTHON, ['-c', 'import pyroute2']) && succeeds('ip', ['-V'])) return;
  const script = path.join(ROOT, 'scripts', 'bench-peers.sh');
  process.stderr.write(`bench: peers missing; running ${script}\n`);
  const r = spawnSync('sh', [script], { stdio: 'inherit' });
  if (r.status !== 0 || !succeeds(PYTHON, ['-c', 'import pyroute2'])) {
    process.stderr.write(
      'bench: could not install the peers. Inside the sandbox there is no network, so apt-get may fail here:\n' +
        `       run  sudo sh ${path.relative(process.cwd(), script)}  once outside it, then npm run bench again.\n`,
    );
    process.exit(3);
  }
}

async function main(): Promise<void> {
  assertSandbox();
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) usage(0);
  if (argv.includes('--list')) {
    for (const [name, s] of Object.entries(SUITES)) process.stdout.write(`${name}\t${s.title}\n`);
    return;
  }
  const scale = argv.includes('--quick') ? 1 / 3 : 1;
  const names = argv.filter((a) => !a.startsWith('--'));
  for (const a of argv.filter((x) => x.startsWith('--'))) if (a !== '--quick') usage(2);
  const unknown = names.filter((n) => !(n in SUITES));
  if (unknown.length) {
    process.stderr.write(`bench: unknown suite ${unknown.join(', ')}\n`);
    usage(2);
  }
  const chosen = Object.keys(SUITES).filter((n) => names.length === 0 || names.includes(n));

  ensurePeers();
  const machine = machineFacts();
  const log = (m: string): void => void process.stderr.write(`${m}\n`);
  for (const name of chosen) {
    const s = await SUITES[name]!.load();
    log(`== suite ${s.name}`);
    const t0 = now();
    const body = await s.run({ scale, log });
    // Load from other work on the machine (and other processes taking the kernel's global
    // rtnl lock) shows up in every number: keep the load at the end next to the one at the start.
    const result: SuiteResult = {
      suite: s.name, title: s.title, machine: { ...machine, loadavg_1m_end: round(os.loadavg()[0] ?? 0, 2) },
      duration_s: round((now() - t0) / 1000, 1), ...body,
    };
    for (const f of writeSuite(result)) log(`wrote ${path.relative(process.cwd(), f)}`);
    for (const t of result.targets) process.stdout.write(`${s.name}: ${t.met ? 'met    ' : 'NOT met'}  ${t.text} — ${t.detail}\n`);
  }
  log(`wrote ${path.relative(process.cwd(), writeLatest())}`);
  // Every namespace a measurement made must be gone again.
  const left = run('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(`nsb${process.pid}x`));
  if (left.length) throw new Error(`namespaces left behind: ${left.join(', ')}`);
}

main().catch((e: unknown) => {
  deleteLeftNamespaces();
  process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  if (e instanceof Error && e.message.includes('No native build was found')) process.stderr.write('bench: build the addon first: npm run build:native\n');
  process.exit(1);
});
