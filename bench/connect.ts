/**
 * Suite "connect" (issue 18): where the time of a connect goes, and how fast connect and
 * disconnect are alone, at 1,000 containers, with 32 in flight and with a warm pool — nsnet
 * against netavark (and the CNI plugins) in the same run.
 *
 *   small        containers 1–10 connected (1 published port each) then disconnected 10–1, in a
 *                fresh host per round, the tools taking turns (3 rounds): nsnet with its state
 *                dir on disk and on tmpfs, netavark setup/teardown, CNI bridge+portmap ADD/DEL;
 *                nsnet's connects are split into phases (lib/phases.ts: the bench installs the
 *                sink, nothing is timed otherwise) with their netlink requests, round trips,
 *                syncs and threads
 *   first        the first connect of a fresh host (the network just made), 5 fresh hosts
 *   syscalls     `strace -f -c` of a child process doing K connect+disconnect cycles, for two
 *                K: fsync/fdatasync/syncfs, clone/clone3 (threads and processes made) and
 *                sendto/sendmsg (requests sent) per operation; netavark setup+teardown the same way
 *   scale        one pass connecting containers 1..1,000 then disconnecting 1,000..1, all timed
 *   concurrency  32 connects: 1, 8 and 32 in flight in one process; 4 processes × 8 in flight
 *                (one store, one host); 32 netavark setups started at once
 *   warm         the warm pool: prepare(network, 35) untimed, then 30 connects without a
 *                namespace (each takes a slot), 1 published port each, each followed by a cold
 *                connect in the same host (the same conditions), and their disconnects
 *
 * Load average at the start and end of the suite and the cost of starting /bin/true are in the
 * machine facts and the notes: on a loaded machine the peers (dozens of processes each) slow down
 * far more than nsnet, and every figure moves; rerun on a quiet machine.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  ROOT,
  now,
  round,
  run,
  sleep,
  stats,
  succeeds,
  summarize,
  type Chart,
  type Suite,
  type SuiteOptions,
  type SummaryRow,
  type TargetResult,
  type WorkloadResult,
} from './common';
import { processCosts, requirePeers, version } from './bridge';
import { NETAVARK, ENV_PATH, netavarkOptions, netnsFile, withHost, withHostNamespace, type HostNamespace, type ToolId } from './peers';

const NETWORK = 'bench';
const SUBNET = '10.88.0.0/16';
const BRIDGE = 'nsbr-bench';
const ROUND = 10;
const TOP = 1000;
const BURST = 32;
const WARM = 30;
const med = (s: number[]): number => (s.length ? stats(s).median : NaN);
const publish = (s: number): { hostPort: number; containerPort: number; protocol: 'tcp' }[] => [
  { hostPort: 20000 + 10 * (s - 1), containerPort: 80, protocol: 'tcp' },
];
const clock = (): number => performance.timeOrigin + performance.now();

// ------------------------------------------------------------------------------ nsnet in process

/** What one operation cost: its phases (ms) and counts. */
interface Recorded {
  ms: number;
  phases: Record<string, number>;
  counts: Record<string, number>;
}

type Lib = typeof import('../lib/index');
interface Hooks {
  setPhaseSink: typeof import('../lib/phases').setPhaseSink;
  threadsStarted: () => number;
  /** CPU time of this thread (the event loop's), ms. */
  threadCpu: () => number;
}

/** Loaded on first use (after the sandbox check, like every suite's nsnet). */
let loaded: Promise<{ lib: Lib; hooks: Hooks }> | undefined;
function nsnet(): Promise<{ lib: Lib; hooks: Hooks }> {
  loaded ??= (async () => {
    const lib = await import('../lib/index');
    const { setPhaseSink } = await import('../lib/phases');
    const { native } = await import('../lib/native');
    return { lib, hooks: { setPhaseSink, threadsStarted: () => native.threadsStarted(), threadCpu: () => native.threadCpuMs() } };
  })();
  return loaded;
}

/** Runs `op` with the phase sink installed and returns its time, phases and counts. */
async function recorded(hooks: Hooks, op: () => Promise<unknown>): Promise<Recorded> {
  const r: Recorded = { ms: 0, phases: {}, counts: {} };
  let last = now();
  const t0 = last;
  const threads0 = hooks.threadsStarted();
  const cpu0 = hooks.threadCpu();
  hooks.setPhaseSink({
    mark(name) {
      const t = now();
      r.phases[name] = (r.phases[name] ?? 0) + (t - last);
      last = t;
    },
    count(what, n) {
      r.counts[what] = (r.counts[what] ?? 0) + n;
    },
  });
  try {
    await op();
  } finally {
    hooks.setPhaseSink(undefined);
  }
  const end = now();
  r.phases.return = end - last;
  r.ms = end - t0;
  r.counts['threads started'] = hooks.threadsStarted() - threads0;
  // How much of the operation the event loop's thread was busy (its JavaScript, the addon's
  // encoding, the store's system calls): the rest is waiting for the kernel and other threads.
  r.counts['ms of event-loop CPU'] = Math.round((hooks.threadCpu() - cpu0) * 100) / 100;
  return r;
}

interface NsnetHost {
  h: import('../lib/index').NetworkHost;
  hooks: Hooks;
  connect(s: number): Promise<Recorded>;
  disconnect(s: number): Promise<Recorded>;
  close(): Promise<void>;
}

/** A NetworkHost in the host namespace `ns`, its state dir under `root`, the network made. */
async function openNsnet(ns: HostNamespace, root: string): Promise<NsnetHost> {
  const { lib, hooks } = await nsnet();
  const stateDir = fs.mkdtempSync(path.join(root, 'nsnet-bench-connect-'));
  const h = await lib.NetworkHost.open({ netns: ns.name, stateDir });
  await h.createNetwork({ name: NETWORK, subnet: SUBNET, bridge: BRIDGE });
  return {
    h,
    hooks,
    connect: (s) => recorded(hooks, () => h.connect(NETWORK, { id: `c${s}`, netns: netnsFile(ns.cname(s)), publish: publish(s) })),
    disconnect: (s) => recorded(hooks, () => h.disconnect(NETWORK, `c${s}`)),
    async close() {
      await h.close();
      fs.rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

async function withNsnet<T>(root: string, containers: number, fn: (n: NsnetHost, ns: HostNamespace) => Promise<T>): Promise<T> {
  return withHostNamespace(async (ns) => {
    if (containers) ns.containers(1, containers);
    await sleep(200);
    const n = await openNsnet(ns, root);
    try {
      return await fn(n, ns);
    } finally {
      await n.close();
    }
  });
}

/** Where tmpfs is (the "store on tmpfs" row); undefined when there is none. */
function tmpfsRoot(): string | undefined {
  try {
    const line = fs
      .readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .find((l) => l.split(' ')[1] === '/dev/shm' && l.split(' ')[2] === 'tmpfs');
    return line ? '/dev/shm' : undefined;
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------------------ measurements

interface Small {
  connect: Recorded[][];
  disconnect: Recorded[][];
}

async function smallNsnet(root: string): Promise<{ connect: Recorded[]; disconnect: Recorded[] }> {
  return withNsnet(root, ROUND, async (n) => {
    const connect: Recorded[] = [];
    const disconnect: Recorded[] = [];
    for (let s = 1; s <= ROUND; s++) connect.push(await n.connect(s));
    for (let s = ROUND; s >= 1; s--) disconnect.push(await n.disconnect(s));
    return { connect, disconnect };
  });
}

async function smallPeer(tool: ToolId): Promise<{ connect: number[]; disconnect: number[] }> {
  return withHost(tool, async (h) => {
    h.containers(1, ROUND);
    await sleep(200);
    const connect: number[] = [];
    const disconnect: number[] = [];
    for (let s = 1; s <= ROUND; s++) connect.push(await h.driver.connect(s));
    h.driver.verify(ROUND);
    for (let s = ROUND; s >= 1; s--) disconnect.push(await h.driver.disconnect(s));
    return { connect, disconnect };
  });
}

/** System calls per operation from `strace -f -c` summaries of two runs (K1 < K2 operations). */
interface Syscalls {
  syncs: number;
  clones: number;
  sends: number;
  detail: Record<string, number>;
}

function straceCounts(file: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const f = line.trim().split(/\s+/u);
    // "% time seconds usecs/call calls errors syscall": errors may be empty.
    const name = f[f.length - 1];
    if (!name || !/^[a-z_0-9]+$/u.test(name) || name === 'total' || f.length < 5) continue;
    out[name] = Number(f[3]);
  }
  return out;
}

function perOp(a: Record<string, number>, b: Record<string, number>, ops: number): Syscalls {
  const d = (k: string): number => ((b[k] ?? 0) - (a[k] ?? 0)) / ops;
  const names = ['fsync', 'fdatasync', 'syncfs', 'sync_file_range', 'clone', 'clone3', 'fork', 'vfork', 'sendto', 'sendmsg'];
  return {
    syncs: d('fsync') + d('fdatasync') + d('syncfs') + d('sync_file_range'),
    clones: d('clone') + d('clone3') + d('fork') + d('vfork'),
    sends: d('sendto') + d('sendmsg'),
    detail: Object.fromEntries(names.map((k) => [k, round(d(k), 2)])),
  };
}

const TRACED = 'fsync,fdatasync,syncfs,sync_file_range,clone,clone3,fork,vfork,sendto,sendmsg';

/** nsnet: K connect+disconnect cycles in a child under strace, for K = 10 and 60. */
async function straceNsnet(): Promise<Syscalls> {
  const counts: Record<string, number>[] = [];
  for (const k of [10, 60]) {
    counts.push(
      await withHostNamespace(async (ns) => {
        ns.containers(1, k);
        await sleep(200);
        const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-strace-'));
        const out = path.join(stateDir, 'strace.txt');
        try {
          run('strace', [
            '-f',
            '-c',
            '-o',
            out,
            '-e',
            `trace=${TRACED}`,
            process.execPath,
            path.join(__dirname, 'connect-child.js'),
            'cycles',
            ns.name,
            `${ns.name}c`,
            path.join(stateDir, 'state'),
            String(k),
          ]);
          return straceCounts(out);
        } finally {
          fs.rmSync(stateDir, { recursive: true, force: true });
        }
      }),
    );
  }
  return perOp(counts[0]!, counts[1]!, 2 * 50);
}

/** netavark: K setup+teardown cycles (each a process under `ip netns exec`), for K = 4 and 14. */
async function straceNetavark(): Promise<Syscalls> {
  const counts: Record<string, number>[] = [];
  for (const k of [4, 14]) {
    counts.push(
      await withHostNamespace(async (ns) => {
        ns.containers(1, k);
        await sleep(200);
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-strace-nv-'));
        const out = path.join(dir, 'strace.txt');
        const script = Array.from({ length: k }, (_, i) => i + 1)
          .flatMap((s) => [
            `printf '%s' '${netavarkOptions(s)}' | ${NETAVARK} --config ${dir} setup ${netnsFile(ns.cname(s))} >/dev/null`,
            `printf '%s' '${netavarkOptions(s)}' | ${NETAVARK} --config ${dir} teardown ${netnsFile(ns.cname(s))} >/dev/null`,
          ])
          .join('\n');
        try {
          run('ip', ['netns', 'exec', ns.name, 'strace', '-f', '-c', '-o', out, '-e', `trace=${TRACED}`, 'sh', '-e', '-c', script], {
            env: { ...process.env, PATH: ENV_PATH, NETAVARK_FW: 'iptables' },
          });
          return straceCounts(out);
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }),
    );
  }
  return perOp(counts[0]!, counts[1]!, 2 * 10);
}

/** One pass: containers 1..TOP connected, then TOP..1 disconnected, every operation timed. */
async function scalePass(log: (m: string) => void): Promise<{ connect: number[]; disconnect: number[] }> {
  return withNsnet(os.tmpdir(), TOP, async (n) => {
    const connect: number[] = [];
    const disconnect: number[] = [];
    for (let s = 1; s <= TOP; s++) connect.push((await n.connect(s)).ms);
    for (let s = TOP; s >= 1; s--) disconnect.push((await n.disconnect(s)).ms);
    log(
      `  scale: connect 1–10 ${med(connect.slice(0, 10)).toFixed(2)} ms, 991–1,000 ${med(connect.slice(-10)).toFixed(2)} ms; ` +
        `disconnect 1,000–991 ${med(disconnect.slice(0, 10)).toFixed(2)} ms, 10–1 ${med(disconnect.slice(-10)).toFixed(2)} ms`,
    );
    return { connect, disconnect };
  });
}

/** 4 processes × 8 connects at once (one store, one host namespace): the wall time of the 32. */
async function processes(): Promise<number> {
  const PROCS = 4;
  const EACH = BURST / PROCS;
  return withHostNamespace(async (ns) => {
    ns.containers(1, PROCS * (EACH + 1));
    await sleep(200);
    const { lib } = await nsnet();
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-procs-'));
    try {
      const parent = await lib.NetworkHost.open({ netns: ns.name, stateDir });
      await parent.createNetwork({ name: NETWORK, subnet: SUBNET, bridge: BRIDGE });
      await parent.close();
      const children = Array.from({ length: PROCS }, (_, p) =>
        spawn(
          process.execPath,
          [path.join(__dirname, 'connect-child.js'), 'burst', ns.name, `${ns.name}c`, stateDir, String(p * (EACH + 1) + 1), String(EACH)],
          { stdio: ['pipe', 'pipe', 'inherit'] },
        ),
      );
      const lines = children.map((c) => {
        let buf = '';
        const waiters: ((l: string) => void)[] = [];
        const got: string[] = [];
        c.stdout!.on('data', (d: Buffer) => {
          buf += d.toString();
          for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
            const l = buf.slice(0, i);
            buf = buf.slice(i + 1);
            const w = waiters.shift();
            if (w) w(l);
            else got.push(l);
          }
        });
        return (): Promise<string> => (got.length ? Promise.resolve(got.shift()!) : new Promise((r) => waiters.push(r)));
      });
      const exited = children.map((c) => new Promise<number>((r) => c.on('exit', (code) => r(code ?? 1))));
      for (const next of lines) if ((await next()) !== 'ready') throw new Error('connect-child: not ready');
      for (const c of children) c.stdin!.write('go\n');
      const spans = await Promise.all(lines.map(async (next) => JSON.parse(await next()) as { start: number; end: number }));
      const codes = await Promise.all(exited);
      if (codes.some((x) => x !== 0)) throw new Error(`connect-child exited ${codes.join(', ')}`);
      return Math.max(...spans.map((x) => x.end)) - Math.min(...spans.map((x) => x.start));
    } finally {
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  });
}

/** 32 netavark setups started at once (after one untimed setup: its bridge and chains exist). */
async function netavarkParallel(): Promise<number> {
  return withHostNamespace(async (ns) => {
    ns.containers(1, BURST + 1);
    await sleep(200);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-nvpar-'));
    const env = { ...process.env, PATH: ENV_PATH, NETAVARK_FW: 'iptables' };
    const setup = (s: number): Promise<number> =>
      new Promise((resolve, reject) => {
        const c = spawn('ip', ['netns', 'exec', ns.name, NETAVARK, '--config', dir, 'setup', netnsFile(ns.cname(s))], {
          env,
          stdio: ['pipe', 'ignore', 'pipe'],
        });
        let err = '';
        c.stderr!.on('data', (d: Buffer) => void (err += d.toString()));
        c.on('exit', (code) => (code === 0 ? resolve(clock()) : reject(new Error(`netavark setup ${s} exited ${code}: ${err.slice(0, 500)}`))));
        c.stdin!.end(netavarkOptions(s));
      });
    try {
      await setup(BURST + 1);
      const t0 = clock();
      const ends = await Promise.all(Array.from({ length: BURST }, (_, i) => setup(i + 1)));
      return Math.max(...ends) - t0;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

/**
 * The warm pool: prepare 35 slots (untimed), then 30 connects without a namespace, each followed
 * by a cold connect (a namespace of its own) in the same host — both under the same conditions —
 * and their disconnects.
 */
async function warmRound(): Promise<{ connect: Recorded[]; cold: Recorded[]; disconnect: Recorded[]; prepareMs: number }> {
  return withNsnet(os.tmpdir(), WARM, async (n) => {
    const t0 = now();
    await n.h.prepare(NETWORK, WARM + 5);
    const prepareMs = now() - t0;
    await sleep(200);
    const connect: Recorded[] = [];
    const cold: Recorded[] = [];
    const disconnect: Recorded[] = [];
    for (let s = 1; s <= WARM; s++) {
      connect.push(await recorded(n.hooks, () => n.h.connect(NETWORK, { id: `w${s}`, publish: publish(100 + s) })));
      cold.push(await n.connect(s));
    }
    for (let s = WARM; s >= 1; s--) {
      disconnect.push(await recorded(n.hooks, () => n.h.disconnect(NETWORK, `w${s}`)));
      await n.disconnect(s);
    }
    return { connect, cold, disconnect, prepareMs };
  });
}

// ------------------------------------------------------------------------------ the suite

/** Median of each phase (and count) over operations. */
function medians(ops: Recorded[], key: 'phases' | 'counts'): Record<string, number> {
  const keys = [...new Set(ops.flatMap((o) => Object.keys(o[key])))];
  return Object.fromEntries(keys.map((k) => [k, med(ops.map((o) => o[key][k] ?? 0))]));
}

export const connectSuite: Suite = {
  name: 'connect',
  title: 'connect/disconnect: phases, syscalls per operation, 1,000 containers, 32 in flight, warm pool — nsnet vs netavark and CNI',
  async run(o: SuiteOptions) {
    requirePeers();
    const log = o.log;
    const rounds = Math.max(1, Math.round(3 * o.scale));
    const load0 = os.loadavg()[0] ?? 0;
    const { execMs, spawnMs } = await processCosts();
    log(`load average ${load0.toFixed(2)}; /bin/true ${spawnMs.toFixed(2)} ms; ip netns exec HOST /bin/true ${execMs.toFixed(2)} ms`);
    const versions = { nsnet_git: version('git', ['-C', ROOT, 'describe', '--always', '--dirty']), netavark: version(NETAVARK, ['--version']) };
    const tmpfs = tmpfsRoot();
    await nsnet();

    // small rounds, tools taking turns
    const small: Record<string, Small> = { nsnet: { connect: [], disconnect: [] }, 'nsnet-tmpfs': { connect: [], disconnect: [] } };
    const peers: Record<string, { connect: number[][]; disconnect: number[][] }> = {
      netavark: { connect: [], disconnect: [] },
      cni: { connect: [], disconnect: [] },
    };
    for (let r = 0; r < rounds; r++) {
      for (const [tool, root] of [['nsnet', os.tmpdir()], ...(tmpfs ? [['nsnet-tmpfs', tmpfs]] : [])] as [string, string][]) {
        const x = await smallNsnet(root);
        small[tool]!.connect.push(x.connect);
        small[tool]!.disconnect.push(x.disconnect);
        log(
          `  round ${r + 1}/${rounds} ${tool}: connect median ${med(x.connect.map((c) => c.ms)).toFixed(2)} ms (first ${x.connect[0]!.ms.toFixed(2)}), disconnect median ${med(x.disconnect.map((c) => c.ms)).toFixed(2)} ms`,
        );
      }
      for (const tool of ['netavark', 'cni'] as ToolId[]) {
        const x = await smallPeer(tool);
        peers[tool]!.connect.push(x.connect);
        peers[tool]!.disconnect.push(x.disconnect);
        log(`  round ${r + 1}/${rounds} ${tool}: connect median ${med(x.connect).toFixed(1)} ms, disconnect median ${med(x.disconnect).toFixed(1)} ms`);
      }
    }
    // first connects of fresh hosts (beyond those of the rounds)
    const firsts: Recorded[] = small.nsnet!.connect.map((c) => c[0]!);
    for (let i = 0; i < Math.max(2, Math.round(5 * o.scale)); i++) firsts.push(await withNsnet(os.tmpdir(), 1, (n) => n.connect(1)));
    // steady state: every connect of a round but its first
    const steady = small.nsnet!.connect.flatMap((c) => c.slice(1));
    const steadyDisc = small.nsnet!.disconnect.flat();

    // warm pool
    const warm: { connect: Recorded[][]; cold: Recorded[][]; disconnect: Recorded[][]; prepare: number[] } = {
      connect: [],
      cold: [],
      disconnect: [],
      prepare: [],
    };
    for (let r = 0; r < rounds; r++) {
      const x = await warmRound();
      warm.connect.push(x.connect);
      warm.cold.push(x.cold);
      warm.disconnect.push(x.disconnect);
      warm.prepare.push(x.prepareMs);
      log(
        `  warm pool round ${r + 1}/${rounds}: prepare(${WARM + 5}) ${x.prepareMs.toFixed(0)} ms, connect median ${med(x.connect.map((c) => c.ms)).toFixed(2)} ms (cold connects between them ${med(x.cold.map((c) => c.ms)).toFixed(2)} ms), disconnect median ${med(x.disconnect.map((c) => c.ms)).toFixed(2)} ms`,
      );
    }
    // system calls per operation
    const haveStrace = succeeds('strace', ['-V']);
    const sys = haveStrace ? { nsnet: await straceNsnet(), netavark: await straceNetavark() } : undefined;
    if (sys)
      log(
        `  syscalls per operation: nsnet syncs ${sys.nsnet.syncs.toFixed(2)}, clones ${sys.nsnet.clones.toFixed(2)}, sends ${sys.nsnet.sends.toFixed(2)}; netavark syncs ${sys.netavark.syncs.toFixed(2)}, clones ${sys.netavark.clones.toFixed(2)}`,
      );

    // scale
    const scale = await scalePass(log);

    // concurrency
    const reps = Math.max(1, Math.round(3 * o.scale));
    const flight: Record<number, number[]> = { 1: [], 8: [], 32: [] };
    const procs: number[] = [];
    const nvpar: number[] = [];
    for (let r = 0; r < reps; r++) {
      for (const k of [1, 8, 32]) flight[k]!.push(await inFlightMeasured(k));
      procs.push(await processes());
      nvpar.push(await netavarkParallel());
      log(
        `  concurrency ${r + 1}/${reps}: 32 connects, 1 in flight ${flight[1]!.at(-1)!.toFixed(1)} ms, 8 ${flight[8]!.at(-1)!.toFixed(1)} ms, 32 ${flight[32]!.at(-1)!.toFixed(1)} ms; ` +
          `4 processes × 8 ${procs.at(-1)!.toFixed(1)} ms; 32 netavark setups at once ${nvpar.at(-1)!.toFixed(1)} ms`,
      );
    }

    const load1 = os.loadavg()[0] ?? 0;

    // ---------------------------------------------------------------- workloads
    const ms = (rs: Recorded[]): number[] => rs.map((x) => x.ms);
    const NS_LABEL = 'nsnet connect() in process, 1 published port, state dir on disk';
    const workloads: WorkloadResult[] = [];
    const sc: SummaryRow[] = [
      { tool: 'nsnet', label: NS_LABEL, items: 1, samples: ms(small.nsnet!.connect.flat()), groups: small.nsnet!.connect.map(ms), timing: 'in process' },
      ...(tmpfs
        ? [
            {
              tool: 'nsnet-tmpfs',
              label: 'the same, state dir on tmpfs',
              items: 1,
              samples: ms(small['nsnet-tmpfs']!.connect.flat()),
              groups: small['nsnet-tmpfs']!.connect.map(ms),
              timing: 'in process',
            },
          ]
        : []),
      {
        tool: 'nsnet-warm',
        label: 'nsnet connect() taking a warm-pool slot (no netns passed), 1 published port',
        items: 1,
        samples: ms(warm.connect.flat()),
        groups: warm.connect.map(ms),
        timing: 'in process',
      },
      {
        tool: 'nsnet-cold-beside-warm',
        label: 'nsnet connect() with a netns, alternating with the warm-pool connects in the same host',
        items: 1,
        samples: ms(warm.cold.flat()),
        groups: warm.cold.map(ms),
        timing: 'in process',
      },
      {
        tool: 'netavark',
        label: 'netavark setup (1 process), NETAVARK_FW=iptables, 1 port',
        items: 1,
        samples: peers.netavark!.connect.flat(),
        groups: peers.netavark!.connect,
        timing: 'whole process',
      },
      {
        tool: 'cni',
        label: 'CNI bridge + host-local + portmap ADD (2 processes), 1 port',
        items: 1,
        samples: peers.cni!.connect.flat(),
        groups: peers.cni!.connect,
        timing: 'whole processes',
      },
    ];
    const peerNote = `containers 1–10, ${rounds} rounds, each tool a fresh host namespace per round, taking turns. The peers run as processes under \`ip netns exec\` (${execMs.toFixed(1)} ms each here; /bin/true ${spawnMs.toFixed(1)} ms).`;
    workloads.push({
      id: 'connect',
      title: 'connect one container (containers 1–10, 1 published port)',
      unit: 'container',
      reference: 'netavark',
      note: peerNote,
      tools: summarize(sc, 'netavark'),
    });
    const sd: SummaryRow[] = [
      {
        tool: 'nsnet',
        label: 'nsnet disconnect() (veth retired at once, deleted in a batch moments later)',
        items: 1,
        samples: ms(small.nsnet!.disconnect.flat()),
        groups: small.nsnet!.disconnect.map(ms),
        timing: 'in process',
      },
      ...(tmpfs
        ? [
            {
              tool: 'nsnet-tmpfs',
              label: 'the same, state dir on tmpfs',
              items: 1,
              samples: ms(small['nsnet-tmpfs']!.disconnect.flat()),
              groups: small['nsnet-tmpfs']!.disconnect.map(ms),
              timing: 'in process',
            },
          ]
        : []),
      {
        tool: 'nsnet-warm',
        label: 'nsnet disconnect() of a warm-pool endpoint (its namespace removed too)',
        items: 1,
        samples: ms(warm.disconnect.flat()),
        groups: warm.disconnect.map(ms),
        timing: 'in process',
      },
      {
        tool: 'netavark',
        label: 'netavark teardown',
        items: 1,
        samples: peers.netavark!.disconnect.flat(),
        groups: peers.netavark!.disconnect,
        timing: 'whole process',
      },
      {
        tool: 'cni',
        label: 'CNI portmap + bridge DEL',
        items: 1,
        samples: peers.cni!.disconnect.flat(),
        groups: peers.cni!.disconnect,
        timing: 'whole processes',
      },
    ];
    workloads.push({
      id: 'disconnect',
      title: 'disconnect one container (10–1)',
      unit: 'container',
      reference: 'netavark',
      note: peerNote,
      tools: summarize(sd, 'netavark'),
    });
    workloads.push({
      id: 'first',
      title: 'the first connect of a fresh host (the network just made) against the steady state',
      unit: 'container',
      reference: 'nsnet-steady',
      note: 'A fresh namespace, state dir and NetworkHost each time (createNetwork untimed), in this process; steady: connects 2–10 of the rounds.',
      tools: summarize(
        [
          { tool: 'nsnet-steady', label: 'connects 2–10 of a round', items: 1, samples: ms(steady), timing: 'in process' },
          { tool: 'nsnet-first', label: 'the first connect of a fresh host', items: 1, samples: ms(firsts), timing: 'in process' },
        ],
        'nsnet-steady',
      ),
    });
    const v = { unit: 'ms', higher_is_better: false };
    const phaseRows = (ops: Recorded[], prefix: string): SummaryRow[] => {
      const keys = [...new Set(ops.flatMap((x) => Object.keys(x.phases)))];
      return [
        ...keys.map((k) => ({ tool: `${prefix}${k}`, label: k, items: 1, samples: ops.map((x) => x.phases[k] ?? 0), timing: 'phase', nsnet: true })),
        { tool: `${prefix}total`, label: 'total', items: 1, samples: ms(ops), timing: 'in process', nsnet: true },
      ];
    };
    const PHASE_NOTE =
      'Medians per phase (lib/phases.ts marks; the bench installs the sink, nothing is timed otherwise): each phase runs from the previous mark. ' +
      "store: read — the network record (shared lock); validate; store: lock — the exclusive lock (and the check for a log to replay); ports: sock_diag — the host's bound sockets; " +
      "ipam — the lease and the record; link — the veth pair made (peer born in the container); addresses/routes — the host end's mark, hairpin and up, and the container side in one batch " +
      "(the two in parallel); firewall — waiting for the firewall's elements (made in parallel with the link); store: commit — the record appended to the log and fdatasync'ed, the documents in place; return.";
    workloads.push({
      id: 'phases-connect',
      title: "where a connect's time goes (containers 2–10 of the rounds, store on disk)",
      unit: 'phase',
      reference: 'phase:total',
      value: v,
      note: PHASE_NOTE,
      tools: summarize(phaseRows(steady, 'phase:'), 'phase:total', v),
    });
    workloads.push({
      id: 'phases-first',
      title: "where the first connect's time goes (fresh hosts)",
      unit: 'phase',
      reference: 'phase:total',
      value: v,
      note: 'As above, the first connect of each fresh host.',
      tools: summarize(phaseRows(firsts, 'phase:'), 'phase:total', v),
    });
    workloads.push({
      id: 'phases-disconnect',
      title: "where a disconnect's time goes",
      unit: 'phase',
      reference: 'phase:total',
      value: v,
      note: 'firewall/link: the elements removed and the veth retired, in parallel.',
      tools: summarize(phaseRows(steadyDisc, 'phase:'), 'phase:total', v),
    });
    workloads.push({
      id: 'phases-warm',
      title: "where a warm-pool connect's time goes",
      unit: 'phase',
      reference: 'phase:total',
      value: v,
      note: "pool: the slot taken — its host end marked as the endpoint's and the ports published, in parallel.",
      tools: summarize(phaseRows(warm.connect.flat(), 'phase:'), 'phase:total', v),
    });
    const counts = medians(steady, 'counts');
    const dcounts = medians(steadyDisc, 'counts');
    const wcounts = medians(warm.connect.flat(), 'counts');
    const conc = { unit: 'connects/s', higher_is_better: true };
    const rate = (wall: number[]): number[] => wall.map((w) => (BURST * 1000) / w);
    const concRows: SummaryRow[] = [
      ...[1, 8, 32].map((k) => ({
        tool: `nsnet-${k}`,
        label: `nsnet, one process, ${k} in flight (32 connects)`,
        items: 1,
        samples: rate(flight[k]!),
        timing: 'in process',
        nsnet: true,
      })),
      {
        tool: 'nsnet-4x8',
        label: 'nsnet, 4 processes × 8 in flight (one store, one host)',
        items: 1,
        samples: rate(procs),
        timing: 'whole burst',
        nsnet: true,
      },
      { tool: 'netavark-32', label: '32 netavark setups started at once', items: 1, samples: rate(nvpar), timing: 'whole processes', nsnet: false },
    ];
    workloads.push({
      id: 'concurrency',
      title: '32 connects in flight: connects per second',
      unit: 'burst',
      reference: 'netavark-32',
      value: conc,
      note:
        `${reps} repetitions, each a fresh host; the rate is 32 / (time from the first start to the last end). One process: Promise.all over 1, 8 or 32 connects at a time; ` +
        '4 processes: each opens its NetworkHost, connects and disconnects one container 5 times untimed (warm), then connects 8 at once on a common signal. netavark: one untimed setup, then 32 processes spawned at once.',
      tools: summarize(concRows, 'netavark-32', conc),
    });
    const scaleRows: SummaryRow[] = [
      { tool: 'nsnet-connect-10', label: 'connect, containers 1–10', items: 1, samples: scale.connect.slice(0, 10), timing: 'in process', nsnet: true },
      { tool: 'nsnet-connect-1000', label: 'connect, containers 991–1,000', items: 1, samples: scale.connect.slice(-10), timing: 'in process', nsnet: true },
      {
        tool: 'nsnet-disconnect-1000',
        label: 'disconnect, containers 1,000–991',
        items: 1,
        samples: scale.disconnect.slice(0, 10),
        timing: 'in process',
        nsnet: true,
      },
      { tool: 'nsnet-disconnect-10', label: 'disconnect, containers 10–1', items: 1, samples: scale.disconnect.slice(-10), timing: 'in process', nsnet: true },
    ];
    workloads.push({
      id: 'scale',
      title: 'connect and disconnect from 1 to 1,000 containers (one pass, store on disk)',
      unit: 'container',
      reference: 'nsnet-connect-10',
      note: 'One network filling up to 1,000 containers, then emptied newest first; every operation timed (the chart shows them all).',
      tools: summarize(scaleRows, 'nsnet-connect-10'),
    });

    const window = (xs: number[], from: number, n = 50): { x: number; y: number; p95: number }[] => {
      const out: { x: number; y: number; p95: number }[] = [];
      for (let i = 0; i < xs.length; i += n) {
        const s = xs.slice(i, i + n);
        out.push({ x: from + i + s.length / 2, y: round(med(s), 3), p95: round(stats(s).p95, 3) });
      }
      return out;
    };
    const charts: Chart[] = [
      {
        id: 'scale',
        title: 'nsnet connect and disconnect against the containers present (medians of 50)',
        x_label: 'containers present',
        y_label: 'ms',
        series: [
          { name: 'connect', nsnet: true, points: window(scale.connect, 0) },
          { name: 'disconnect', nsnet: true, points: window([...scale.disconnect].reverse(), 0).map((p) => ({ ...p, x: p.x })) },
        ],
      },
      {
        id: 'concurrency',
        title: '32 connects: connects per second against connects in flight',
        x_label: 'in flight',
        y_label: 'connects/s (median)',
        series: [
          { name: 'nsnet, one process', nsnet: true, points: [1, 8, 32].map((k) => ({ x: k, y: round(med(rate(flight[k]!)), 1) })) },
          { name: 'netavark, 32 processes', nsnet: false, points: [{ x: 32, y: round(med(rate(nvpar)), 1) }] },
        ],
      },
    ];

    // ---------------------------------------------------------------- targets
    const x2 = (n: number): string => `${n.toFixed(2)}×`;
    const m = (n: number): string => `${n.toFixed(2)} ms`;
    const c = med(ms(small.nsnet!.connect.flat()));
    const nv = med(peers.netavark!.connect.flat());
    const d = med(ms(small.nsnet!.disconnect.flat()));
    const busy = (ops: Recorded[]): string => m(med(ops.map((x) => x.counts['ms of event-loop CPU'] ?? NaN)));
    const targets: TargetResult[] = [];
    targets.push({
      id: 'connect-4ms',
      text: "connect ≤ 4 ms median in process, store on disk, and ≥ 20× netavark's setup in the same run",
      met: c <= 4 && nv / c >= 20,
      detail: `containers 1–10 (${rounds} rounds): nsnet ${m(c)}${tmpfs ? ` (store on tmpfs ${m(med(ms(small['nsnet-tmpfs']!.connect.flat())))})` : ''}; netavark ${m(nv)} = ${x2(nv / c)}; CNI ${m(med(peers.cni!.connect.flat()))}; the event loop's thread busy ${busy(small.nsnet!.connect.flat())} of it`,
    });
    targets.push({
      id: 'disconnect-3ms',
      text: 'disconnect ≤ 3 ms median',
      met: d <= 3,
      detail: `containers 10–1: nsnet ${m(d)} (the event loop's thread busy ${busy(small.nsnet!.disconnect.flat())}); netavark teardown ${m(med(peers.netavark!.disconnect.flat()))}, CNI DEL ${m(med(peers.cni!.disconnect.flat()))}`,
    });
    const c10 = med(scale.connect.slice(0, 10));
    const c1000 = med(scale.connect.slice(-10));
    const d1000 = med(scale.disconnect.slice(0, 10));
    const d10 = med(scale.disconnect.slice(-10));
    targets.push({
      id: 'flat-1000',
      text: 'connect and disconnect flat from container 1 to 1,000 (the 1,000th within 1.5× of the 10th)',
      met: c1000 <= 1.5 * c10 && d1000 <= 1.5 * d10,
      detail: `connect 1–10 ${m(c10)}, 991–1,000 ${m(c1000)} (${x2(c1000 / c10)}); disconnect 10–1 ${m(d10)}, 1,000–991 ${m(d1000)} (${x2(d1000 / d10)})`,
    });
    const f = med(ms(firsts));
    const st = med(ms(steady));
    targets.push({
      id: 'first-2x',
      text: 'the first connect of a fresh host ≤ 2× the steady state',
      met: f <= 2 * st,
      detail: `first ${m(f)} (${firsts.length} fresh hosts) vs connects 2–10 ${m(st)} = ${x2(f / st)}`,
    });
    targets.push(
      sys
        ? {
            id: 'one-sync',
            text: 'durable with ≤ 1 fsync/fdatasync per operation',
            met: sys.nsnet.syncs <= 1.0001,
            detail: `strace -f -c of 100 more connect+disconnect cycles: ${sys.nsnet.syncs.toFixed(2)} syncs per operation (${JSON.stringify(sys.nsnet.detail)}); netavark setup+teardown ${sys.netavark.syncs.toFixed(2)}`,
          }
        : { id: 'one-sync', text: 'durable with ≤ 1 fsync/fdatasync per operation', met: false, status: 'not measured', detail: 'strace is not installed' },
    );
    targets.push(
      sys
        ? {
            id: 'no-thread',
            text: 'no thread created per operation in steady state',
            met: sys.nsnet.clones < 0.05 && med(steady.map((x) => x.counts['threads started'] ?? 0)) === 0,
            detail:
              `clone/clone3 per operation ${sys.nsnet.clones.toFixed(2)} (strace, 100 cycles); pool threads started per connect ${med(steady.map((x) => x.counts['threads started'] ?? 0))}; ` +
              `netavark: ${sys.netavark.clones.toFixed(1)} clones per operation (processes and threads)`,
          }
        : {
            id: 'no-thread',
            text: 'no thread created per operation in steady state',
            met: med(steady.map((x) => x.counts['threads started'] ?? 0)) === 0,
            detail: "strace missing: only the addon pool's count",
          },
    );
    const nvp = med(nvpar);
    targets.push({
      id: 'concurrency-5x',
      text: '32 connects in flight (one process, and 4 processes × 8) finish ≥ 5× faster than 32 netavark setups run in parallel',
      met: nvp / med(flight[32]!) >= 5 && nvp / med(procs) >= 5,
      detail:
        `32 netavark setups at once ${m(nvp)}; nsnet 32 in flight ${m(med(flight[32]!))} (${x2(nvp / med(flight[32]!))}), 4 × 8 ${m(med(procs))} (${x2(nvp / med(procs))}); ` +
        `connects/s at 1, 8, 32 in flight: ${[1, 8, 32].map((k) => med(rate(flight[k]!)).toFixed(0)).join(', ')}`,
    });
    const w = med(ms(warm.connect.flat()));
    targets.push({
      id: 'warm-1ms',
      text: 'connect with a warm pool ≤ 1 ms (aim)',
      met: w <= 1,
      detail:
        `${m(w)} median over ${warm.connect.flat().length} connects taking slots (prepare(${WARM + 5}) took ${med(warm.prepare).toFixed(0)} ms); cold connects alternating with them in the same hosts ${m(med(ms(warm.cold.flat())))}; ` +
        `where the warm connect's time goes: ${Object.entries(medians(warm.connect.flat(), 'phases'))
          .map(([k, v]) => `${k} ${v.toFixed(2)}`)
          .join(', ')} ms`,
    });

    const notes = [
      `Machine: load average ${load0.toFixed(2)} at the start of the suite, ${load1.toFixed(2)} at its end; starting /bin/true ${spawnMs.toFixed(2)} ms, under \`ip netns exec\` ${execMs.toFixed(2)} ms. ` +
        'Figures from a loaded machine are not comparable: rerun on a quiet one.',
      `Per connect (medians, containers 2–10): ${Object.entries(counts)
        .map(([k, n]) => `${n} ${k}`)
        .join(', ')}. Per disconnect: ${Object.entries(dcounts)
        .map(([k, n]) => `${n} ${k}`)
        .join(', ')}. ` +
        `Per warm-pool connect: ${Object.entries(wcounts)
          .map(([k, n]) => `${n} ${k}`)
          .join(', ')}.` +
        (sys
          ? ` strace per operation (connect or disconnect), nsnet: ${JSON.stringify(sys.nsnet.detail)}; netavark: ${JSON.stringify(sys.netavark.detail)}.`
          : ''),
      "Warm pool (lib/pool.ts): a slot is a namespace nsnet made, with the container's interface in it, addressed, up and routed, its veth on the bridge; connect hands one over. " +
        "Not parked peers moved into the container's namespace: moving a veth between namespaces waits for an RCU grace period (~19 ms per move measured here with `ip link set … netns`, against ~0.9 ms to create a pair with its peer in place).",
    ];
    return {
      workloads,
      targets,
      charts,
      notes,
      versions,
      spawn_true_ms: round(spawnMs, 3),
      ip_netns_exec_ms: round(execMs, 3),
      loadavg_start: round(load0, 2),
      loadavg_end: round(load1, 2),
      counts: { connect: counts, disconnect: dcounts, warm: wcounts },
      syscalls: sys ?? null,
      scale_ms: { connect: scale.connect.map((x) => round(x, 3)), disconnect: scale.disconnect.map((x) => round(x, 3)) },
    };
  },
};

/** 32 connects with `k` at a time, in one process (a fresh host): the wall time (ms) of all of them. */
async function inFlightMeasured(k: number): Promise<number> {
  return withHostNamespace(async (ns) => {
    ns.containers(1, BURST);
    await sleep(200);
    const n = await openNsnet(ns, os.tmpdir());
    try {
      const t0 = now();
      for (let s = 1; s <= BURST; s += k) {
        await Promise.all(
          Array.from({ length: Math.min(k, BURST - s + 1) }, (_, i) =>
            n.h.connect(NETWORK, { id: `c${s + i}`, netns: netnsFile(ns.cname(s + i)), publish: publish(s + i) }),
          ),
        );
      }
      return now() - t0;
    } finally {
      await n.close();
    }
  });
}
