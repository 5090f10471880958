/**
 * The benchmark runner: `npm run bench [-- SUITE... ] [--quick]`.
 *
 * Runs the named suites (all by default) inside the private namespaces of scripts/sandbox.js
 * and writes bench/results/<suite>.json, <suite>.svg, latest.json (every suite's last result)
 * and latest.md.
 *
 *   --list     print the suite names and exit
 *   --quick    a third of the runs (for trying the bench out; the numbers are noisier)
 *   --render   only redraw the SVGs and latest.* from the JSON in bench/results (no measuring;
 *              needs no sandbox)
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  PEER_MODULES,
  PYTHON,
  ROOT,
  assertSandbox,
  deleteLeftNamespaces,
  machineFacts,
  now,
  round,
  run,
  succeeds,
  type Suite,
  type SuiteResult,
} from './common';
import { rerender, writeLatest, writeSuite } from './report';

/**
 * The suites, by name, in the order `npm run bench` runs them. Loaded only after the sandbox
 * check: loading nsnet loads the addon, and nothing of it should run outside the sandbox.
 */
const SUITES: Record<string, { title: string; load: () => Promise<Suite | undefined> }> = {
  rtnetlink: {
    title: 'links over rtnetlink: nsnet vs iproute2, pyroute2 and the npm netlink package',
    load: async () => (await import('./rtnetlink')).rtnetlink,
  },
  nft: { title: 'nf_tables map elements: nsnet vs nft -f', load: async () => (await import('./nft')).nftSuite },
  bridge: {
    title: 'container connect/disconnect (1st, 100th, 1,000th): nsnet vs CNI plugins and netavark',
    load: async () => (await import('./bridge')).bridgeSuite,
  },
  connect: {
    title: 'connect/disconnect: phases, syscalls per operation, 1,000 containers, 32 in flight, warm pool — nsnet vs netavark and CNI',
    load: async () => (await import('./connect')).connectSuite,
  },
  cni: { title: 'nsnet-cni as a process (daemon, fallback) vs CNI plugins and netavark', load: async () => (await import('./cni')).cniSuite },
  ports: { title: 'port-publishing scale: one more port with 10 / 1,000 / 10,000 published', load: async () => (await import('./ports')).portsSuite },
  dataplane: {
    title: 'data plane: throughput and latency by path vs host mode; first packet with 10,000 ports',
    load: async () => (await import('./dataplane')).dataplaneSuite,
  },
  dns: {
    title: 'embedded DNS: latency, queries/s, loss while records change, time to a new name — nsnet vs aardvark-dns 1.4',
    load: async () => (await import('./dns')).dnsSuite,
  },
  memory: { title: 'memory: RSS of a NetworkHost idle and with 1,000 endpoints', load: async () => (await import('./memory')).memorySuite },
  startup: { title: "start-up: nsnet commands and require('nsnet') as processes vs node -e 0", load: async () => (await import('./startup')).startupSuite },
  daemon: {
    title: "no daemon to start by hand: ADDs with no daemon running vs netavark; the daemon's memory",
    load: async () => (await import('./daemon')).daemonSuite,
  },
};

function usage(code: number): never {
  process.stderr.write(`usage: npm run bench [-- [--quick] [--list] [--render] [SUITE...]]\nsuites: ${Object.keys(SUITES).join(', ')}\n`);
  process.exit(code);
}

/** What the suites compare with, found or not (scripts/bench-peers.sh installs them). */
function peersPresent(): boolean {
  return (
    succeeds(PYTHON, ['-c', 'import pyroute2']) &&
    succeeds('ip', ['-V']) &&
    succeeds('iperf3', ['--version']) &&
    fs.existsSync('/usr/lib/cni/portmap') &&
    fs.existsSync('/usr/lib/podman/netavark') &&
    fs.existsSync('/usr/lib/podman/aardvark-dns') &&
    fs.existsSync(path.join(PEER_MODULES, 'netlink', 'package.json'))
  );
}

/** Installs the peers (Debian packages, the npm netlink package) if one is missing. */
function ensurePeers(): void {
  if (peersPresent()) return;
  const script = path.join(ROOT, 'scripts', 'bench-peers.sh');
  process.stderr.write(`bench: peers missing; running ${script}\n`);
  const r = spawnSync('sh', [script], { stdio: 'inherit' });
  if (r.status !== 0 || !peersPresent()) {
    process.stderr.write(
      'bench: could not install the peers. Inside the sandbox there is no network, so apt-get and npm fail here:\n' +
        `       run  sudo sh ${path.relative(process.cwd(), script)}  once outside it, then npm run bench again.\n`,
    );
    process.exit(3);
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--render')) {
    for (const f of rerender()) process.stderr.write(`wrote ${path.relative(process.cwd(), f)}\n`);
    return;
  }
  assertSandbox();
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
    if (!s) {
      log(`== suite ${name}: not in this checkout (bench/${name}.ts), skipped`);
      continue;
    }
    log(`== suite ${s.name}`);
    const t0 = now();
    const body = await s.run({ scale, log });
    // Load from other work on the machine (and other processes taking the kernel's global
    // rtnl lock) shows up in every number: keep the load at the end next to the one at the start.
    const result: SuiteResult = {
      suite: s.name,
      title: s.title,
      machine: { ...machine, loadavg_1m_end: round(os.loadavg()[0] ?? 0, 2) },
      duration_s: round((now() - t0) / 1000, 1),
      ...body,
    };
    for (const f of writeSuite(result)) log(`wrote ${path.relative(process.cwd(), f)}`);
    // latest.* after every suite: a later suite that fails leaves the earlier ones reported.
    writeLatest();
    for (const t of result.targets)
      process.stdout.write(`${s.name}: ${t.status === 'not measured' ? 'not measured' : t.met ? 'met    ' : 'NOT met'}  ${t.text} — ${t.detail}\n`);
  }
  for (const f of writeLatest()) log(`wrote ${path.relative(process.cwd(), f)}`);
  // Every namespace a measurement made must be gone again.
  const left = run('ip', ['netns', 'list'])
    .stdout.split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(`nsb${process.pid}x`));
  if (left.length) throw new Error(`namespaces left behind: ${left.join(', ')}`);
}

main().catch((e: unknown) => {
  deleteLeftNamespaces();
  process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  if (e instanceof Error && e.message.includes('No native build was found')) process.stderr.write('bench: build the addon first: npm run build:native\n');
  process.exit(1);
});
