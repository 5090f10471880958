/**
 * Suite "cni": the plugin path. A runtime pays for a CNI plugin as a process; this measures what
 * one ADD and one DEL cost it — a container on a bridge network with one published port — for:
 *
 *   nsnet-cni-daemon    build/Release/nsnet-cni (the native client) talking to the nsnet-cni
 *                       daemon (node dist/lib/cni/daemon.js, started by the suite), which keeps
 *                       the NetworkHost of the host namespace open
 *   nsnet-cni-fallback  the same client with no daemon (NSNET_CNI_SOCKET=none): it execs node,
 *                       which loads nsnet and serves the request in process
 *   cni                 /usr/lib/cni/bridge (isGateway, ipMasq, hairpinMode, host-local IPAM)
 *                       then /usr/lib/cni/portmap (snat, runtimeConfig.portMappings,
 *                       prevResult); DEL runs portmap then bridge
 *   netavark            /usr/lib/podman/netavark setup|teardown, NETAVARK_FW=iptables
 *
 * The cni and netavark rows are the drivers of bench/peers.ts, the same the bridge and ports
 * suites run (and whose state their replay proves); their time is from before the first plugin
 * process starts to after the last one exits.
 *
 * Every plugin process runs under `ip netns exec HOST` in a fresh host namespace per round (as
 * in the bridge suite), with the CNI_* variables (or netavark's arguments) and the configuration
 * on stdin. Per round and tool: one container added untimed (the network, bridge and firewall
 * chains exist afterwards: steady state, not first use), then 10 more ADDed (timed), then
 * DELeted newest first (timed); the tools take turns round by round. For scale, the floors:
 * `ip netns exec HOST /bin/true`, `node -e 0`, and `nsnet-cni VERSION` through the daemon and
 * without it.
 *
 * Target (issue "nsnet-cni", speed of the plugin path): nsnet-cni ADD no slower than netavark's
 * setup, compared by median within one run.
 *
 *   node scripts/sandbox.js -- node dist/bench/cni.js [--quick]
 * writes bench/results/cni.json, cni.svg and cni.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  ROOT,
  RESULTS_DIR,
  assertSandbox,
  machineFacts,
  now,
  round,
  run,
  sleep,
  stats,
  succeeds,
  summarize,
  withNetns,
  type Suite,
  type SuiteOptions,
  type SuiteResult,
  type TargetResult,
  type WorkloadResult,
} from './common';
import { CNI_PATH, NETAVARK, NETWORK, SUBNET, hex64, hostPort, inHost, netnsFile, withHost, withHostNamespace, type HostNamespace } from './peers';
import { writeSuite } from './report';
import { FileLock } from '../lib/store/flock';

const WINDOW = 10;
const CLIENT = path.join(ROOT, 'build', 'Release', 'nsnet-cni');
const DAEMON = path.join(ROOT, 'dist', 'lib', 'cni', 'daemon.js');

type ToolId = 'nsnet-cni-daemon' | 'nsnet-cni-fallback' | 'cni' | 'netavark';
const TOOLS: ToolId[] = ['nsnet-cni-daemon', 'nsnet-cni-fallback', 'cni', 'netavark'];
const LABEL: Record<ToolId, string> = {
  'nsnet-cni-daemon': 'nsnet-cni (native client) → nsnet-cni daemon, 1 port',
  'nsnet-cni-fallback': 'nsnet-cni without a daemon: the client execs node, 1 port',
  cni: 'CNI bridge + host-local + portmap (2 processes), 1 port',
  netavark: 'netavark setup/teardown (1 process), NETAVARK_FW=iptables, 1 port',
};

/**
 * What a round needs of a tool: ADD and DEL of container `serial` (one published port), each
 * returning its ms, and a check that the container is wired. The peers' drivers of
 * bench/peers.ts (the CNI chain, netavark: the same ones the bridge and ports suites time, with
 * their checks) have this shape; nsnetCniDriver is the plugin path of this suite.
 */
interface Steps {
  connect(serial: number): Promise<number>;
  disconnect(serial: number): Promise<number>;
  verify(serial: number): void;
}

/**
 * build/Release/nsnet-cni run as a CNI plugin process under `ip netns exec HOST`: through the
 * daemon at `socket`, or (socket 'none') execing node, which serves the request in process.
 */
function nsnetCniDriver(h: HostNamespace, socket: string): Steps & { close(): Promise<void> } {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-cni-'));
  const conf = (s: number): Record<string, unknown> => ({
    cniVersion: '1.1.0',
    name: NETWORK,
    type: 'nsnet-cni',
    subnet: SUBNET,
    stateDir,
    capabilities: { portMappings: true },
    runtimeConfig: { portMappings: [{ hostPort: hostPort(s), containerPort: 80, protocol: 'tcp' }] },
  });
  const env = (command: string, s: number): Record<string, string> => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: hex64(`c${s}`),
    CNI_NETNS: netnsFile(h.cname(s)),
    CNI_IFNAME: 'eth0',
    CNI_PATH,
    NSNET_CNI_SOCKET: socket,
  });
  const results = new Map<number, unknown>();
  return {
    async connect(s) {
      const r = inHost(h.name, [CLIENT], JSON.stringify(conf(s)), env('ADD', s));
      results.set(s, JSON.parse(r.stdout));
      return r.ms;
    },
    async disconnect(s) {
      const r = inHost(h.name, [CLIENT], JSON.stringify({ ...conf(s), prevResult: results.get(s) }), env('DEL', s));
      results.delete(s);
      return r.ms;
    },
    verify(s) {
      const addr = run('ip', ['-n', h.cname(s), '-4', '-o', 'addr', 'show', 'dev', 'eth0']).stdout;
      if (!/inet 10\.88\.\d+\.\d+\/16 /u.test(addr)) throw new Error(`nsnet-cni: container ${s} has no address`);
    },
    async close() {
      // The daemon finishes a commit's slow rest (a checkpoint) after answering, under the
      // store's lock: wait for it, so that nothing is written while the directory goes.
      const lock = await FileLock.acquire(path.join(stateDir, '.lock'), { create: false });
      try {
        fs.rmSync(stateDir, { recursive: true, force: true });
      } finally {
        lock.release();
      }
    },
  };
}

/** Starts the daemon the nsnet-cni-daemon rows talk to. */
async function startDaemon(): Promise<{ socket: string; proc: ChildProcess; stop(): Promise<void> }> {
  const dir = `/run/nsnet-bench-${process.pid}`;
  const socket = path.join(dir, 'cni.sock');
  // A short idle timeout: each round's host namespace is released soon after the round.
  const proc = spawn(process.execPath, [DAEMON, '--socket', socket, '--idle-timeout', '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.once('data', () => resolve());
    proc.once('exit', (code) => reject(new Error(`the nsnet-cni daemon exited ${code}`)));
  });
  return {
    socket,
    proc,
    async stop() {
      const gone = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await gone;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * One round of one tool in a fresh host: container 1 added untimed (the warm-up: the network,
 * bridge and firewall chains exist afterwards), then containers 2..WINDOW+1 added and deleted,
 * timed. (Serial 1 first: the peers' drivers give container s the address .s+1, and .1 is the
 * gateway.)
 */
async function round1(tool: ToolId, socket: string): Promise<{ add: number[]; del: number[] }> {
  const last = WINDOW + 1;
  const window = async (h: HostNamespace, d: Steps): Promise<{ add: number[]; del: number[] }> => {
    h.containers(1, last);
    await sleep(200);
    await d.connect(1); // untimed
    d.verify(1);
    const add: number[] = [];
    const del: number[] = [];
    for (let s = 2; s <= last; s++) add.push(await d.connect(s));
    d.verify(last);
    for (let s = last; s >= 2; s--) del.push(await d.disconnect(s));
    await d.disconnect(1);
    return { add, del };
  };
  const out =
    tool === 'cni' || tool === 'netavark'
      ? await withHost(tool, (h) => window(h, h.driver))
      : await withHostNamespace(async (h) => {
          const d = nsnetCniDriver(h, tool === 'nsnet-cni-daemon' ? socket : 'none');
          try {
            return await window(h, d);
          } finally {
            await d.close();
          }
        });
  await sleep(300);
  return out;
}

function requirePeers(): void {
  const missing = [
    ...['bridge', 'host-local', 'portmap'].filter((p) => !fs.existsSync(path.join(CNI_PATH, p))).map((p) => `${CNI_PATH}/${p} (containernetworking-plugins)`),
    ...(fs.existsSync(NETAVARK) ? [] : [`${NETAVARK} (netavark)`]),
    ...(succeeds('iptables-save', ['--version']) ? [] : ['iptables-save (iptables)']),
    ...(fs.existsSync(CLIENT) ? [] : [`${CLIENT} (npm run build:native)`]),
  ];
  if (missing.length) throw new Error(`cni suite: missing ${missing.join(', ')}`);
}

const median = (s: number[]): number => stats(s).median;

export const cniSuite: Suite = {
  name: 'cni',
  title: 'the CNI plugin path: ADD/DEL as processes, nsnet-cni (daemon and fallback) vs the CNI plugins and netavark',
  async run(o: SuiteOptions) {
    requirePeers();
    const log = o.log;
    const daemon = await startDaemon();
    try {
      const floors: Record<string, number[]> = { exec: [], node: [], versionDaemon: [], versionFallback: [] };
      await withNetns((host) => {
        const version = (socket: string): number => inHost(host, [CLIENT], '{"cniVersion":"1.1.0"}', { CNI_COMMAND: 'VERSION', NSNET_CNI_SOCKET: socket }).ms;
        for (let i = 0; i < 11; i++) {
          floors.exec!.push(run('ip', ['netns', 'exec', host, '/bin/true']).ms);
          floors.node!.push(run('ip', ['netns', 'exec', host, process.execPath, '-e', '0']).ms);
          floors.versionDaemon!.push(version(daemon.socket));
          floors.versionFallback!.push(version('none'));
        }
      });
      log(
        `floors: ip netns exec /bin/true ${median(floors.exec!).toFixed(1)} ms, node -e 0 ${median(floors.node!).toFixed(1)} ms, ` +
          `nsnet-cni VERSION via daemon ${median(floors.versionDaemon!).toFixed(1)} ms, without ${median(floors.versionFallback!).toFixed(1)} ms`,
      );

      const rounds = Math.max(1, Math.round(3 * o.scale));
      const add: Record<ToolId, number[]> = { 'nsnet-cni-daemon': [], 'nsnet-cni-fallback': [], cni: [], netavark: [] };
      const del: Record<ToolId, number[]> = { 'nsnet-cni-daemon': [], 'nsnet-cni-fallback': [], cni: [], netavark: [] };
      for (let r = 0; r < rounds; r++) {
        for (const t of TOOLS) {
          const x = await round1(t, daemon.socket);
          add[t].push(...x.add);
          del[t].push(...x.del);
          log(`  round ${r + 1}/${rounds} ${t}: ADD median ${median(x.add).toFixed(1)} ms, DEL median ${median(x.del).toFixed(1)} ms`);
        }
      }

      const rows = (samples: Record<ToolId, number[]>) =>
        TOOLS.map((t) => ({
          tool: t,
          label: LABEL[t],
          items: 1,
          samples: samples[t],
          timing: 'whole process(es) under ip netns exec',
          nsnet: t.startsWith('nsnet'),
        }));
      const workloads: WorkloadResult[] = [
        {
          id: 'add',
          title: `ADD, containers 1–${WINDOW} (a warm-up container already added)`,
          unit: 'container',
          reference: 'netavark',
          note: `${rounds} rounds × ${WINDOW} containers, each round in a fresh host namespace. vs ref above 1.00 is faster than netavark's setup.`,
          tools: summarize(rows(add), 'netavark'),
        },
        {
          id: 'del',
          title: `DEL, containers ${WINDOW}–1`,
          unit: 'container',
          reference: 'netavark',
          note: "nsnet-cni's DEL deletes the veth pair before it returns (one kernel wait): a runtime may put another interface of the same name into the namespace right after.",
          tools: summarize(rows(del), 'netavark'),
        },
        {
          id: 'floors',
          title: 'what starting the processes costs (no network work)',
          unit: 'process',
          reference: 'ip-netns-exec-true',
          note: 'Every row of the panels above includes at least one `ip netns exec` (the CNI plugins: two per ADD and per DEL).',
          tools: summarize(
            [
              { tool: 'ip-netns-exec-true', label: 'ip netns exec HOST /bin/true', items: 1, samples: floors.exec!, timing: 'whole process', nsnet: false },
              {
                tool: 'nsnet-cni-version-daemon',
                label: 'nsnet-cni VERSION through the daemon',
                items: 1,
                samples: floors.versionDaemon!,
                timing: 'whole process',
                nsnet: true,
              },
              { tool: 'node-e-0', label: 'node -e 0', items: 1, samples: floors.node!, timing: 'whole process', nsnet: false },
              {
                tool: 'nsnet-cni-version-fallback',
                label: 'nsnet-cni VERSION without a daemon (node + nsnet loaded)',
                items: 1,
                samples: floors.versionFallback!,
                timing: 'whole process',
                nsnet: true,
              },
            ],
            'ip-netns-exec-true',
          ),
        },
      ];
      const m = (x: Record<ToolId, number[]>, t: ToolId): number => median(x[t]);
      const x = (n: number): string => `${n.toFixed(2)}×`;
      const targets: TargetResult[] = [
        {
          id: 'cni-add-vs-netavark',
          text: "nsnet-cni ADD (through the daemon) is no slower than netavark's setup",
          met: m(add, 'nsnet-cni-daemon') <= m(add, 'netavark'),
          detail:
            `median ${m(add, 'nsnet-cni-daemon').toFixed(1)} ms vs netavark ${m(add, 'netavark').toFixed(1)} ms (${x(m(add, 'netavark') / m(add, 'nsnet-cni-daemon'))} faster); ` +
            `CNI bridge+portmap ${m(add, 'cni').toFixed(1)} ms; without the daemon ${m(add, 'nsnet-cni-fallback').toFixed(1)} ms (${x(m(add, 'netavark') / m(add, 'nsnet-cni-fallback'))} of netavark's speed: node's start and loading nsnet, ` +
            `\`nsnet-cni VERSION\` alone takes ${median(floors.versionFallback!).toFixed(1)} ms without the daemon, ${median(floors.versionDaemon!).toFixed(1)} ms with it)`,
        },
        {
          id: 'cni-del-vs-netavark',
          text: "nsnet-cni DEL (through the daemon) is no slower than netavark's teardown",
          met: m(del, 'nsnet-cni-daemon') <= m(del, 'netavark'),
          detail: `median ${m(del, 'nsnet-cni-daemon').toFixed(1)} ms vs netavark ${m(del, 'netavark').toFixed(1)} ms (${x(m(del, 'netavark') / m(del, 'nsnet-cni-daemon'))} faster); CNI ${m(del, 'cni').toFixed(1)} ms; without the daemon ${m(del, 'nsnet-cni-fallback').toFixed(1)} ms`,
        },
      ];
      const versions = {
        cni_plugins: run('dpkg-query', ['-W', '-f', '${Version}', 'containernetworking-plugins']).stdout.trim(),
        netavark: run(NETAVARK, ['--version']).stdout.trim(),
      };
      return { workloads, targets, versions, floors_ms: Object.fromEntries(Object.entries(floors).map(([k, v]) => [k, round(median(v), 3)])) };
    } finally {
      await daemon.stop();
    }
  },
};

/** bench/results/cni.md: the targets and one table per workload. */
function markdown(r: SuiteResult): string {
  const f = (n: number, d = 1): string => n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
  const m = r.machine;
  const out = [
    `# ${r.title}`,
    '',
    `Run ${String(m.date)} · ${String(m.kernel)} · node ${String(m.node)} · ${String(m.cpu_count)} CPUs · load ${String(m.loadavg_1m)} → ${String(m.loadavg_1m_end)} · ${f(r.duration_s)} s.`,
    'Reproduce: `npm run build:native && npx tsc -p tsconfig.json && node scripts/sandbox.js -- node dist/bench/cni.js`. Compare by ratio within one run.',
    '',
    '## Targets',
    '',
  ];
  for (const t of r.targets) out.push(`- ${t.met ? '**met**' : '**NOT met**'}: ${t.text}. ${t.detail}.`);
  for (const w of r.workloads) {
    out.push(
      '',
      `## ${w.title}`,
      '',
      `Reference: \`${w.reference}\`. ${w.note ?? ''}`,
      '',
      '| tool | what | median ms | p95 ms | runs | vs ref |',
      '|---|---|---:|---:|---:|---:|',
    );
    for (const t of w.tools)
      out.push(`| ${t.nsnet ? `**${t.tool}**` : t.tool} | ${t.label} | ${f(t.median_ms)} | ${f(t.p95_ms)} | ${t.runs} | ${f(t.ratio_vs_ref, 2)}× |`);
  }
  return `${out.join('\n')}\n`;
}

/** `node dist/bench/cni.js [--quick]`, inside the sandbox. */
async function main(): Promise<void> {
  assertSandbox();
  const scale = process.argv.includes('--quick') ? 1 / 3 : 1;
  const log = (msg: string): void => void process.stderr.write(`${msg}\n`);
  const machine = machineFacts();
  const t0 = now();
  const body = await cniSuite.run({ scale, log });
  const result: SuiteResult = {
    suite: cniSuite.name,
    title: cniSuite.title,
    machine: { ...machine, loadavg_1m_end: round(os.loadavg()[0] ?? 0, 2) },
    duration_s: round((now() - t0) / 1000, 1),
    ...body,
  };
  for (const f of writeSuite(result)) log(`wrote ${path.relative(process.cwd(), f)}`);
  const md = path.join(RESULTS_DIR, 'cni.md');
  fs.writeFileSync(md, markdown(result));
  log(`wrote ${path.relative(process.cwd(), md)}`);
  for (const t of result.targets) process.stdout.write(`cni: ${t.met ? 'met    ' : 'NOT met'}  ${t.text} — ${t.detail}\n`);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`bench cni: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
