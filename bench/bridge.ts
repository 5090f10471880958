/**
 * Suite "bridge": container connect and disconnect in bridge mode (a veth per container on a
 * Linux bridge, an address, NAT and one published port), nsnet against the CNI reference
 * plugins and netavark doing the same job.
 *
 *   nsnet     NetworkHost.open({ netns: HOST, stateDir: tmpdir }) then connect() / disconnect()
 *             awaited one at a time, timed in process (the handle open, as a daemon uses it)
 *   cni       /usr/lib/cni/bridge (isGateway, ipMasq, hairpinMode, host-local IPAM with its own
 *             dataDir) then /usr/lib/cni/portmap (snat, runtimeConfig.portMappings, prevResult =
 *             bridge's result); DEL runs the chain in reverse. Each plugin is a process run with
 *             `ip netns exec HOST`, the CNI_* variables in its environment and the config on stdin
 *   netavark  `ip netns exec HOST netavark --config DIR setup|teardown /var/run/netns/C` with the
 *             network options JSON on stdin, NETAVARK_FW=iptables (it does no IPAM: the bench
 *             passes the address)
 *
 * Every tool works in its own fresh "host" namespace (`ip netns add`); its containers are
 * namespaces under /var/run/netns (created with one `ip -batch`, untimed). Afterwards the host's
 * links go in one group delete (their veth peers with them), then the container namespaces and
 * the host namespace are deleted, and with them every iptables rule and nft table.
 *
 *   small   containers 1..10 connected then disconnected (10..1) in a fresh host, the three
 *           tools taking turns round by round (3 rounds); nsnet also disconnect() + reap() (the
 *           veth deleted before returning) on 10 more containers a round
 *   scale   one pass per tool in a fresh host, every connect timed (the curve is kept in the
 *           JSON): filled to N-10, then a window of 10 connects (containers N-9..N), the rule
 *           count, and the window disconnected again (timed). nsnet: N = 10, 100, 200, 300, 500,
 *           1,000. The peers, whose time per container grows with what is already published:
 *           N = 100, then the largest of 500, 300, 200 whose estimated fill fits the budget
 *
 * Rule counts: nsnet `nft -j list ruleset` rules; the peers `iptables-save | grep -c '^-A'`
 * (iptables-nft; the nft rule count of their namespace is kept beside it).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NetworkHost } from '../lib/index';
import {
  ROOT, flushLinks, now, round, run, stats, summarize, succeeds, withNetns,
  type Suite, type SuiteOptions, type TargetResult, type WorkloadResult,
} from './common';

const SUBNET = '10.88.0.0/16';
const GATEWAY = '10.88.0.1';
const WINDOW = 10;
const CNI_PATH = '/usr/lib/cni';
const NETAVARK = '/usr/lib/podman/netavark';
const NETWORK = 'bench';
/** nsnet fills to 1,000, with a window at 10 (its flat-line baseline) and at every level a peer may reach. */
const NSNET_LEVELS = [10, 100, 200, 300, 500, 1000];
/** The peers: 100, then the largest of 500, 300, 200 whose fill fits the budget. */
const PEER_PLAN: (number | number[])[] = [100, [500, 300, 200]];
/** A peer's fill beyond 100 may take this long (its estimate; it is stopped at 1.25×)… */
const PEER_FILL_BUDGET_S = 90;
/** …and must end before this many seconds after the suite's start, less the time kept for the
 *  passes after it (the whole suite should take ≤ ~6 min). */
const SUITE_BUDGET_S = 320;
/** What CNI's pass leaves for netavark's pass to 100 (~20 s on a loaded machine). */
const NETAVARK_RESERVE_S = 30;
const ENV_PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin:/usr/bin:/bin`;

type ToolId = 'nsnet' | 'cni' | 'netavark';
const TOOLS: ToolId[] = ['nsnet', 'cni', 'netavark'];
const PEERS: ToolId[] = ['cni', 'netavark'];

/** A tool set up in one host namespace: connects and disconnects containers by serial number. */
interface Driver {
  tool: ToolId;
  connect(serial: number): Promise<number>;
  disconnect(serial: number): Promise<number>;
  /** nsnet only: disconnect() then reap() (the retired veth deleted before returning). */
  disconnectReaped?(serial: number): Promise<number>;
  /** The firewall's rule count in the host namespace (primary) and the nft rule count. */
  rules(): { rules: number; nft: number };
  /** Checks that container `serial` is wired (address in the container, port in the firewall). */
  verify(serial: number): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------- helpers

const netnsFile = (name: string): string => `/var/run/netns/${name}`;
const hostPort = (serial: number): number => 10000 + serial;
/** The container address netavark is given (CNI and nsnet allocate their own): .2, .3, … */
const addressOf = (serial: number): string => `10.88.${((serial + 1) >> 8) & 255}.${(serial + 1) & 255}`;
const hex64 = (s: string): string => Buffer.from(s).toString('hex').padStart(64, '0').slice(-64);

/** `ip netns exec HOST CMD…` with an environment and stdin, timed as a whole process. */
function inHost(host: string, cmd: string[], input: string, env: Record<string, string> = {}): { stdout: string; ms: number } {
  const r = run('ip', ['netns', 'exec', host, ...cmd], { input, env: { ...process.env, PATH: ENV_PATH, ...env } });
  return { stdout: r.stdout, ms: r.ms };
}

function nftRuleCount(host: string): number {
  const j = JSON.parse(run('ip', ['netns', 'exec', host, 'nft', '-j', 'list', 'ruleset']).stdout) as { nftables: Record<string, unknown>[] };
  return j.nftables.filter((o) => 'rule' in o).length;
}

function iptablesRuleCount(host: string): number {
  return run('ip', ['netns', 'exec', host, 'iptables-save'], { env: { ...process.env, PATH: ENV_PATH } }).stdout.split('\n').filter((l) => l.startsWith('-A')).length;
}

function containerHasAddress(ns: string): boolean {
  return /inet 10\.88\.\d+\.\d+\/16 /u.test(run('ip', ['-n', ns, '-4', '-o', 'addr', 'show', 'dev', 'eth0']).stdout);
}

/** `ip -batch -` from the bench's own namespace: `netns add|del` lines (no `-n`: it would enter another mount namespace). */
function globalBatch(lines: string[]): void {
  if (lines.length) run('ip', ['-batch', '-'], { input: lines.join('\n') + '\n' });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------- the tools

async function nsnetDriver(host: string, cname: (s: number) => string): Promise<Driver> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-state-'));
  const h = await NetworkHost.open({ netns: host, stateDir });
  await h.createNetwork({ name: NETWORK, subnet: SUBNET });
  return {
    tool: 'nsnet',
    async connect(s) {
      const t0 = now();
      await h.connect(NETWORK, { id: `c${s}`, netns: netnsFile(cname(s)), publish: [{ hostPort: hostPort(s), containerPort: 80, protocol: 'tcp' }] });
      return now() - t0;
    },
    async disconnect(s) {
      const t0 = now();
      await h.disconnect(NETWORK, `c${s}`);
      return now() - t0;
    },
    async disconnectReaped(s) {
      const t0 = now();
      await h.disconnect(NETWORK, `c${s}`);
      await h.reap();
      return now() - t0;
    },
    rules: () => {
      const n = nftRuleCount(host);
      return { rules: n, nft: n };
    },
    verify(s) {
      if (!containerHasAddress(cname(s))) throw new Error(`nsnet: container ${s} has no address`);
      const listing = run('ip', ['netns', 'exec', host, 'nft', 'list', 'ruleset']).stdout;
      if (!new RegExp(`\\b${hostPort(s)}\\b`, 'u').test(listing)) throw new Error(`nsnet: port ${hostPort(s)} of container ${s} is not in the firewall`);
    },
    async close() {
      await h.close();
      fs.rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

function cniDriver(host: string, cname: (s: number) => string): Driver {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-cni-'));
  const bridgeConf = {
    cniVersion: '1.0.0', name: NETWORK, type: 'bridge', bridge: 'cni0', isGateway: true, ipMasq: true, hairpinMode: true,
    ipam: { type: 'host-local', dataDir: path.join(dir, 'ipam'), ranges: [[{ subnet: SUBNET, gateway: GATEWAY }]], routes: [{ dst: '0.0.0.0/0' }] },
  };
  const portmapConf = (s: number): Record<string, unknown> => ({
    cniVersion: '1.0.0', name: NETWORK, type: 'portmap', snat: true, capabilities: { portMappings: true },
    runtimeConfig: { portMappings: [{ hostPort: hostPort(s), containerPort: 80, protocol: 'tcp' }] },
  });
  const env = (command: string, s: number): Record<string, string> => ({
    CNI_COMMAND: command, CNI_CONTAINERID: `c${s}`, CNI_NETNS: netnsFile(cname(s)), CNI_IFNAME: 'eth0', CNI_PATH,
  });
  const plugin = (type: string, command: string, s: number, conf: unknown): string => inHost(host, [path.join(CNI_PATH, type)], JSON.stringify(conf), env(command, s)).stdout;
  /** The chain's final result per container (what a runtime caches for DEL). */
  const results = new Map<number, unknown>();
  return {
    tool: 'cni',
    async connect(s) {
      const t0 = now();
      const r1 = JSON.parse(plugin('bridge', 'ADD', s, bridgeConf)) as unknown;
      const r2 = JSON.parse(plugin('portmap', 'ADD', s, { ...portmapConf(s), prevResult: r1 })) as unknown;
      const ms = now() - t0;
      results.set(s, r2);
      return ms;
    },
    async disconnect(s) {
      const prevResult = results.get(s);
      const t0 = now();
      plugin('portmap', 'DEL', s, { ...portmapConf(s), prevResult });
      plugin('bridge', 'DEL', s, { ...bridgeConf, prevResult });
      const ms = now() - t0;
      results.delete(s);
      return ms;
    },
    rules: () => ({ rules: iptablesRuleCount(host), nft: nftRuleCount(host) }),
    verify(s) {
      if (!containerHasAddress(cname(s))) throw new Error(`cni: container ${s} has no address`);
      const saved = run('ip', ['netns', 'exec', host, 'iptables-save'], { env: { ...process.env, PATH: ENV_PATH } }).stdout;
      if (!saved.includes(`--dport ${hostPort(s)}`)) throw new Error(`cni: port ${hostPort(s)} of container ${s} has no iptables rule`);
    },
    async close() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function netavarkDriver(host: string, cname: (s: number) => string): Driver {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-netavark-'));
  const networkId = hex64('nsnet-bench-network');
  const options = (s: number): string => JSON.stringify({
    container_id: hex64(`c${s}`),
    container_name: `c${s}`,
    networks: { [NETWORK]: { static_ips: [addressOf(s)], interface_name: 'eth0' } },
    network_info: {
      [NETWORK]: {
        driver: 'bridge', id: networkId, name: NETWORK, network_interface: 'nvbr0',
        subnets: [{ subnet: SUBNET, gateway: GATEWAY }], internal: false, ipv6_enabled: false, dns_enabled: false,
      },
    },
    port_mappings: [{ host_ip: '', container_port: 80, host_port: hostPort(s), range: 1, protocol: 'tcp' }],
  });
  const env = { NETAVARK_FW: 'iptables' };
  return {
    tool: 'netavark',
    async connect(s) {
      return inHost(host, [NETAVARK, '--config', dir, 'setup', netnsFile(cname(s))], options(s), env).ms;
    },
    async disconnect(s) {
      return inHost(host, [NETAVARK, '--config', dir, 'teardown', netnsFile(cname(s))], options(s), env).ms;
    },
    rules: () => ({ rules: iptablesRuleCount(host), nft: nftRuleCount(host) }),
    verify(s) {
      if (!containerHasAddress(cname(s))) throw new Error(`netavark: container ${s} has no address`);
      const saved = run('ip', ['netns', 'exec', host, 'iptables-save'], { env: { ...process.env, PATH: ENV_PATH } }).stdout;
      if (!saved.includes(`--dport ${hostPort(s)}`)) throw new Error(`netavark: port ${hostPort(s)} of container ${s} has no iptables rule`);
    },
    async close() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ------------------------------------------------------------------------------ one host

/**
 * A fresh host namespace with the tool set up in it, and its container namespaces (made on
 * demand, untimed). Afterwards: the tool closed, the host's links removed in one group delete
 * (the veth peers go with them), the container namespaces and the host namespace deleted, and
 * a pause for the kernel's namespace teardown scaled to how many there were.
 */
async function withHost<T>(tool: ToolId, fn: (d: Driver, ensure: (upTo: number) => void) => Promise<T>): Promise<T> {
  let made = 0;
  let containers: string[] = [];
  const result = await withNetns(async (host) => {
    const cname = (s: number): string => `${host}c${s}`;
    const ensure = (upTo: number): void => {
      const lines: string[] = [];
      for (let s = made + 1; s <= upTo; s++) lines.push(`netns add ${cname(s)}`);
      if (!lines.length) return;
      containers.push(...Array.from({ length: upTo - made }, (_, i) => cname(made + 1 + i)));
      made = upTo;
      globalBatch(lines);
    };
    const d = tool === 'nsnet' ? await nsnetDriver(host, cname) : tool === 'cni' ? cniDriver(host, cname) : netavarkDriver(host, cname);
    try {
      return await fn(d, ensure);
    } finally {
      await d.close();
    }
  }, (host) => {
    flushLinks(host);
    if (containers.length) globalBatch(containers.map((c) => `netns del ${c}`));
    containers = [];
  });
  if (made >= 100) await sleep(Math.min(4000, 500 + 3 * made));
  return result;
}

// ------------------------------------------------------------------------------ phases

interface Curve {
  /** [containers present before the connect, ms] */
  connect: [number, number][];
  /** [containers present before the disconnect (the one removed included), ms] */
  disconnect: [number, number][];
}

interface Window {
  level: number;
  connect: number[];
  disconnect: number[];
  rules: RuleCount;
}

interface Small {
  connect: number[];
  disconnect: number[];
  reaped: number[];
  rules1: RuleCount[];
  rules10: RuleCount[];
}

interface Pass {
  tool: ToolId;
  windows: Window[];
  curve: Curve;
  /** Levels not reached, with the reason. */
  skipped: string[];
  seconds: number;
}

/** Containers 1..10 connected, the rule count taken at 1 and 10, then disconnected 10..1. */
interface RuleCount { rules: number; nft: number }

async function smallRound(tool: ToolId): Promise<{ connect: number[]; disconnect: number[]; reaped: number[]; rules1: RuleCount; rules10: RuleCount }> {
  return withHost(tool, async (d, ensure) => {
    ensure(d.disconnectReaped ? 2 * WINDOW : WINDOW);
    await sleep(200); // as before every timed window: the kernel done with the new namespaces
    const connect: number[] = [];
    const disconnect: number[] = [];
    const reaped: number[] = [];
    let rules1: RuleCount = { rules: 0, nft: 0 };
    for (let s = 1; s <= WINDOW; s++) {
      connect.push(await d.connect(s));
      if (s === 1) {
        d.verify(1);
        rules1 = d.rules();
      }
    }
    d.verify(WINDOW);
    const rules10 = d.rules();
    for (let s = WINDOW; s >= 1; s--) disconnect.push(await d.disconnect(s));
    if (d.disconnectReaped) {
      // nsnet deletes a disconnected container's veth a moment later, many in one group delete:
      // here the same, waiting for that delete each time (10 more containers, connected untimed).
      ensure(2 * WINDOW);
      for (let s = WINDOW + 1; s <= 2 * WINDOW; s++) await d.connect(s);
      for (let s = 2 * WINDOW; s > WINDOW; s--) reaped.push(await d.disconnectReaped(s));
    }
    return { connect, disconnect, reaped, rules1, rules10 };
  });
}

/**
 * One pass of a tool through its levels: fill to level-10, a timed window of 10 connects, the
 * rule count, the window disconnected (timed). Every connect and disconnect is timed and kept.
 * A level given as a list means "the largest of these whose fill fits the budget" (the peers:
 * their time per container grows with what is published, so 500 may not fit on a slow machine);
 * a fill that runs far over its estimate is stopped. `reserveS`: time to leave for later passes.
 */
async function scalePass(tool: ToolId, plan: (number | number[])[], log: (m: string) => void, suiteStart: number, reserveS: number): Promise<Pass> {
  const t0 = now();
  return withHost(tool, async (d, ensure) => {
    const curve: Curve = { connect: [], disconnect: [] };
    const windows: Window[] = [];
    const skipped: string[] = [];
    const live: number[] = [];
    let serial = 0;
    let madeUpTo = 0;
    const connectOne = async (): Promise<number> => {
      const s = ++serial;
      if (s > madeUpTo) ensure((madeUpTo = s + 99)); // (made ahead for each level; this is a fallback)
      const ms = await d.connect(s);
      curve.connect.push([live.length, round(ms, 3)]);
      live.push(s);
      return ms;
    };
    /**
     * Seconds to fill up to `level` and run its window. Time per connect grows linearly with the
     * containers present (PEERS.md): a + b·n, fitted to the pass's first ten and its last window;
     * the fill from n0 to n1 takes (n1−n0)·(a + b·(n0+n1)/2), the window's disconnects ~3× its connects.
     */
    const estimate = (level: number): { s: number; perMs: number } => {
      const last = windows[windows.length - 1]!;
      const a = stats(curve.connect.slice(0, WINDOW).map((c) => c[1])).median;
      const b = Math.max(0, (stats(last.connect).median - a) / Math.max(1, last.level - WINDOW));
      const n0 = live.length;
      return { s: ((level - n0) * (a + (b * (n0 + level)) / 2) + 3 * WINDOW * (a + b * level)) / 1000, perMs: a + b * level };
    };
    const budgetS = (): number => Math.min(PEER_FILL_BUDGET_S, SUITE_BUDGET_S - reserveS - (now() - suiteStart) / 1000);
    for (const step of plan) {
      let level: number | undefined;
      if (typeof step === 'number') level = step;
      else {
        if (!windows.length) throw new Error('a choice of levels needs a measured level before it');
        for (const l of [...step].sort((x, y) => y - x)) {
          const e = estimate(l);
          if (e.s <= budgetS()) {
            level = l;
            break;
          }
          skipped.push(`${l}: estimated ${e.s.toFixed(0)} s to get there (${e.perMs.toFixed(0)} ms a container at ${l}), over the ${Math.max(0, budgetS()).toFixed(0)} s left for it`);
          log(`  ${tool}: not going to ${l} (estimated ${e.s.toFixed(0)} s, budget ${Math.max(0, budgetS()).toFixed(0)} s)`);
        }
        if (level === undefined) continue;
      }
      // The namespaces of the fill and the window, made before it (an `ip netns add` right before
      // each timed connect would run into its timing), and a moment for the kernel to settle.
      const need = serial + (level - WINDOW - live.length) + WINDOW;
      if (need > madeUpTo) {
        ensure((madeUpTo = need));
        await sleep(200);
      }
      const tf = now();
      const allowS = tool === 'nsnet' ? Infinity : 1.25 * Math.max(budgetS(), 10);
      let aborted = false;
      while (live.length < level - WINDOW) {
        await connectOne();
        if (live.length % 250 === 0) log(`  ${tool}: ${live.length} containers connected (${((now() - tf) / 1000).toFixed(1)} s)`);
        // The estimate can be wrong (a loaded machine, growth faster than linear): a hard stop.
        const fill = (now() - tf) / 1000;
        if (fill > allowS) {
          const recent = stats(curve.connect.slice(-WINDOW).map((c) => c[1])).median;
          skipped.push(`${level}: the fill was stopped after ${fill.toFixed(0)} s at ${live.length} containers (its last ${WINDOW} connects: median ${recent.toFixed(0)} ms; the curve has them)`);
          log(`  ${tool}: fill to ${level} stopped after ${fill.toFixed(0)} s at ${live.length} containers`);
          aborted = true;
          break;
        }
      }
      if (aborted) break;
      const fillS = (now() - tf) / 1000;
      const w: Window = { level, connect: [], disconnect: [], rules: { rules: 0, nft: 0 } };
      for (let i = 0; i < WINDOW; i++) w.connect.push(await connectOne());
      d.verify(live[live.length - 1]!);
      w.rules = d.rules();
      for (let i = 0; i < WINDOW; i++) {
        const s = live.pop()!;
        const ms = await d.disconnect(s);
        curve.disconnect.push([live.length + 1, round(ms, 3)]);
        w.disconnect.push(ms);
      }
      windows.push(w);
      log(`  ${tool} containers ${level - WINDOW + 1}-${level}: connect median ${stats(w.connect).median.toFixed(1)} ms, ` +
        `disconnect median ${stats(w.disconnect).median.toFixed(1)} ms, ${w.rules.rules} rules (fill took ${fillS.toFixed(1)} s)`);
    }
    return { tool, windows, curve, skipped, seconds: round((now() - t0) / 1000, 1) };
  });
}

// ------------------------------------------------------------------------------ results

const LABEL: Record<ToolId, string> = {
  nsnet: 'nsnet NetworkHost connect()/disconnect(), 1 port',
  cni: 'CNI bridge + host-local + portmap (2 processes ADD, 2 DEL), 1 port',
  netavark: 'netavark setup/teardown (1 process), NETAVARK_FW=iptables, 1 port',
};
const TIMING: Record<ToolId, string> = { nsnet: 'in process', cni: 'whole processes', netavark: 'whole process' };

/** The fastest peer by median among rows present. */
function fastestPeer(samples: Partial<Record<ToolId, number[]>>): ToolId | undefined {
  let best: ToolId | undefined;
  for (const p of PEERS) {
    const s = samples[p];
    if (!s?.length) continue;
    if (!best || stats(s).median < stats(samples[best]!).median) best = p;
  }
  return best;
}

type Row = Parameters<typeof summarize>[0][number];

function compareWorkload(id: string, title: string, samples: Partial<Record<ToolId, number[]>>, note: string, extra: Row[] = []): WorkloadResult {
  const ref = fastestPeer(samples) ?? 'nsnet';
  const rows: Row[] = TOOLS.filter((t) => samples[t]?.length).map((t) => ({ tool: t, label: LABEL[t], items: 1, samples: samples[t]!, timing: TIMING[t] }));
  rows.splice(1, 0, ...extra);
  return { id, title, unit: 'container', reference: ref, note, tools: summarize(rows, ref) };
}

/** What nsnet's disconnect does with the veth (said next to every disconnect panel). */
const RETIRE_NOTE =
  "nsnet's disconnect() removes the port elements, takes the host veth down, off the bridge and into a \"retired\" link " +
  'group, and commits the store; the retired veths are deleted ~50 ms later in one group delete in the background ' +
  '(one RCU wait for all of them; close() waits for it), overlapping the operations timed after it.';

const range = (level: number): string => `${(level - WINDOW + 1).toLocaleString('en-US')}–${level.toLocaleString('en-US')}`;

// ------------------------------------------------------------------------------ the suite

function requirePeers(): void {
  const missing = [
    ...['bridge', 'host-local', 'portmap'].filter((p) => !fs.existsSync(path.join(CNI_PATH, p))).map((p) => `${CNI_PATH}/${p} (containernetworking-plugins)`),
    ...(fs.existsSync(NETAVARK) ? [] : [`${NETAVARK} (netavark)`]),
    ...(succeeds('iptables-save', ['--version']) ? [] : ['iptables-save (iptables)']),
  ];
  if (missing.length) throw new Error(`bridge suite: missing ${missing.join(', ')}; run  sudo sh scripts/bench-peers.sh  outside the sandbox`);
}

function version(cmd: string, args: string[]): string {
  try {
    const r = run(cmd, args);
    return (r.stdout + r.stderr).trim().split('\n')[0] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export const bridgeSuite: Suite = {
  name: 'bridge',
  title: 'bridge mode: container connect/disconnect, nsnet vs CNI plugins and netavark',
  async run(o: SuiteOptions) {
    requirePeers();
    const suiteStart = now();
    const log = o.log;
    const versions = {
      nsnet_git: version('git', ['-C', ROOT, 'describe', '--always', '--dirty']),
      cni_plugins: version('dpkg-query', ['-W', '-f', '${Version}', 'containernetworking-plugins']),
      netavark: version(NETAVARK, ['--version']),
      iptables: version('iptables', ['--version']),
      nft: version('nft', ['--version']),
    };
    // What `ip netns exec HOST` adds to every peer process (CNI: 2 per ADD and per DEL, netavark: 1).
    const execMs = await withNetns((host) => {
      const ms: number[] = [];
      for (let i = 0; i < 11; i++) ms.push(run('ip', ['netns', 'exec', host, '/bin/true']).ms);
      return stats(ms).median;
    });
    const spawnMs = stats(Array.from({ length: 11 }, () => run('/bin/true', []).ms)).median;
    log(`ip netns exec HOST /bin/true: ${execMs.toFixed(2)} ms; /bin/true: ${spawnMs.toFixed(2)} ms`);

    // small: containers 1..10, the tools taking turns round by round
    const rounds = Math.max(1, Math.round(3 * o.scale));
    const small: Record<ToolId, Small> = {
      nsnet: { connect: [], disconnect: [], reaped: [], rules1: [], rules10: [] },
      cni: { connect: [], disconnect: [], reaped: [], rules1: [], rules10: [] },
      netavark: { connect: [], disconnect: [], reaped: [], rules1: [], rules10: [] },
    };
    for (let r = 0; r < rounds; r++) {
      for (const t of TOOLS) {
        const x = await smallRound(t);
        small[t].connect.push(...x.connect);
        small[t].disconnect.push(...x.disconnect);
        small[t].reaped.push(...x.reaped);
        small[t].rules1.push(x.rules1);
        small[t].rules10.push(x.rules10);
        log(`  containers 1-10 round ${r + 1}/${rounds} ${t}: connect median ${stats(x.connect).median.toFixed(1)} ms (first ${x.connect[0]!.toFixed(1)}), ` +
          `disconnect median ${stats(x.disconnect).median.toFixed(1)} ms${x.reaped.length ? ` (${stats(x.reaped).median.toFixed(1)} ms with reap())` : ''}, rules ${x.rules1.rules} at 1, ${x.rules10.rules} at 10`);
      }
    }

    // scale: one pass per tool
    const quick = o.scale < 1;
    const passes: Partial<Record<ToolId, Pass>> = {};
    for (const t of TOOLS) {
      const plan: (number | number[])[] = t === 'nsnet' ? (quick ? [10, 100, 1000] : NSNET_LEVELS) : quick ? [100] : PEER_PLAN;
      log(`scale pass ${t}: levels ${plan.map((l) => (Array.isArray(l) ? `the largest of ${l.join('/')} that fits` : l)).join(', ')}`);
      // CNI goes before netavark: keep time for netavark's way to 100.
      const p = await scalePass(t, plan, log, suiteStart, t === 'cni' ? NETAVARK_RESERVE_S : 0);
      if (quick && t !== 'nsnet') p.skipped.push('500: not tried with --quick');
      passes[t] = p;
    }

    const windowOf = (t: ToolId, level: number): Window | undefined => passes[t]?.windows.find((w) => w.level === level);
    const peerNote =
      `CNI ${versions.cni_plugins} and ${versions.netavark} (${versions.iptables}) run as processes under \`ip netns exec HOST\`, ` +
      `which costs ~${execMs.toFixed(1)} ms a process here (CNI starts 2 per ADD and 2 per DEL, netavark 1); nsnet is timed in process ` +
      'with its NetworkHost open, state store in a temporary directory on disk. Each tool in its own fresh host namespace; ' +
      '`vs ref` is the rate (containers per second) relative to the fastest peer in the panel: 10.00× means 10 times faster.';
    const workloads: WorkloadResult[] = [];
    workloads.push(compareWorkload('connect-1-10', 'connect, containers 1–10 (1 published port each)',
      Object.fromEntries(TOOLS.map((t) => [t, small[t].connect])), `${rounds} rounds of 10 in fresh host namespaces, tools taking turns. ${peerNote}`));
    workloads.push(compareWorkload('disconnect-1-10', 'disconnect, containers 10–1',
      Object.fromEntries(TOOLS.map((t) => [t, small[t].disconnect])), `${rounds} rounds of 10, newest first. ${RETIRE_NOTE} ` +
      `\`nsnet-reaped\`: disconnect() then reap() every time (10 more containers per round), the veth deleted before the time stops. ${peerNote}`,
      small.nsnet.reaped.length ? [{ tool: 'nsnet-reaped', label: 'nsnet disconnect() + reap(): the veth deleted before returning', items: 1, samples: small.nsnet.reaped, timing: 'in process', nsnet: true }] : []));
    const levels = [...new Set(TOOLS.flatMap((t) => passes[t]!.windows.map((w) => w.level)))].sort((a, b) => a - b);
    for (const level of levels) {
      const present = TOOLS.filter((t) => windowOf(t, level));
      // nsnet alone (1,000): shown in the nsnet-against-scale panels below.
      if (!present.some((t) => t !== 'nsnet')) continue;
      const missing = TOOLS.filter((t) => !windowOf(t, level));
      const rulesText = present.map((t) => `${t} ${windowOf(t, level)!.rules.rules} rules`).join(', ');
      const why = (t: ToolId): string => {
        const skip = passes[t]?.skipped.find((x) => x.startsWith(`${level}:`));
        if (skip) return skip;
        const reached = Math.max(...(passes[t]?.windows.map((w) => w.level) ?? [0]));
        return `its pass measured ${passes[t]?.windows.map((w) => w.level).join(' and ')}${reached < level ? '' : ' (the largest that fit)'}`;
      };
      const missText = missing.length ? ` Not measured here: ${missing.map((t) => `${t} — ${why(t)}`).join('; ')}.` : '';
      workloads.push(compareWorkload(`connect-${level}`, `connect, containers ${range(level)} (${level - WINDOW} to ${level - 1} others connected)`,
        Object.fromEntries(present.map((t) => [t, windowOf(t, level)!.connect])),
        `One pass per tool, filled by connecting in a loop; the window of ${WINDOW}. At ${level}: ${rulesText}.${missText}`));
      workloads.push(compareWorkload(`disconnect-${level}`, `disconnect, containers ${level}–${level - WINDOW + 1} (newest first)`,
        Object.fromEntries(present.map((t) => [t, windowOf(t, level)!.disconnect])),
        `The window just connected, disconnected newest first. ${RETIRE_NOTE}${missText}`));
    }
    // nsnet against itself: the flat line, within its one pass (containers 1–10 of the same pass the reference).
    const scaleRows = (what: 'connect' | 'disconnect') => [
      ...passes.nsnet!.windows.map((w) => ({
        tool: `nsnet-${w.level}`, label: `nsnet ${what}, containers ${what === 'connect' ? range(w.level) : `${w.level}–${w.level - WINDOW + 1}`}`,
        items: 1, samples: w[what], timing: 'in process', nsnet: true,
      })),
      { tool: 'nsnet-rounds', label: `nsnet ${what}, containers 1–10 of the ${rounds} small rounds`, items: 1, samples: small.nsnet[what], timing: 'in process', nsnet: true },
    ];
    workloads.push({
      id: 'nsnet-connect-scale', title: 'nsnet connect against the number of containers (one pass)', unit: 'container', reference: `nsnet-${WINDOW}`,
      note: `One network filling up: containers 1–10 of the same pass are the reference; vs ref below 1.00 means slower than those. ` +
        'The target is ≥ 0.67× at 1,000 (the 1,000th within 1.5× of the 1st). The small rounds are shown for the noise between hosts.',
      tools: summarize(scaleRows('connect'), `nsnet-${WINDOW}`),
    });
    workloads.push({
      id: 'nsnet-disconnect-scale', title: 'nsnet disconnect against the number of containers (one pass)', unit: 'container', reference: `nsnet-${WINDOW}`,
      note: 'vs ref below 1.00 means slower than disconnecting containers 10–1 of the same pass.',
      tools: summarize(scaleRows('disconnect'), `nsnet-${WINDOW}`),
    });

    // rule counts by tool and number of containers
    const rules: Record<string, Record<string, RuleCount>> = {};
    for (const t of TOOLS) {
      const r: Record<string, RuleCount> = { '1': small[t].rules1[0]!, '10': small[t].rules10[0]! };
      for (const w of passes[t]!.windows) r[String(w.level)] = w.rules;
      rules[t] = r;
    }

    // Nothing of any tool may have landed in the bench's own namespace (every tool ran in its host namespace).
    const ownLinks = run('ip', ['-o', 'link', 'show']).stdout.split('\n').filter((l) => l.trim() && !/^\d+: lo:/u.test(l));
    const ownTables = run('nft', ['list', 'tables']).stdout.trim();
    if (ownLinks.length || ownTables) throw new Error(`bridge suite: the bench's own namespace was changed: ${ownLinks.join('; ')} ${ownTables}`);

    const body = {
      workloads,
      targets: targets(small, passes, rules, { spawnMs, execMs }),
      versions,
      ip_netns_exec_ms: round(execMs, 3),
      spawn_true_ms: round(spawnMs, 3),
      rules_note: 'nsnet: rules in `nft -j list ruleset` of the host namespace; cni/netavark: `iptables-save | grep -c "^-A"` (rules), and their nft rule count (nft).',
      rules,
      passes: Object.fromEntries(TOOLS.map((t) => [t, { seconds: passes[t]!.seconds, skipped: passes[t]!.skipped, curve: passes[t]!.curve }])),
    };
    return body;
  },
};

function targets(
  small: Record<ToolId, Small>,
  passes: Partial<Record<ToolId, Pass>>,
  rules: Record<string, Record<string, { rules: number }>>,
  cost: { spawnMs: number; execMs: number },
): TargetResult[] {
  const med = (s: number[]): number => stats(s).median;
  const x = (n: number): string => `${n.toFixed(2)}×`;
  const ms = (n: number): string => `${n.toFixed(1)} ms`;
  const out: TargetResult[] = [];

  const connectPeer = fastestPeer({ cni: small.cni.connect, netavark: small.netavark.connect })!;
  const c = med(small.nsnet.connect);
  const cp = med(small[connectPeer].connect);
  const at = (t: ToolId, level: number): number | undefined => {
    const w = passes[t]?.windows.find((y) => y.level === level);
    return w ? med(w.connect) : undefined;
  };
  const peerLevels = [...new Set(PEERS.flatMap((t) => passes[t]?.windows.map((w) => w.level) ?? []))].sort((a, b) => a - b);
  const also = peerLevels.map((l) => {
    const n = at('nsnet', l);
    const p = PEERS.map((t) => at(t, l)).filter((v): v is number => v !== undefined);
    return n !== undefined && p.length ? `at ${range(l)}: ${ms(n)} vs ${ms(Math.min(...p))} (${x(Math.min(...p) / n)})` : undefined;
  }).filter(Boolean);
  out.push({
    id: 'connect-10x',
    text: "nsnet's median connect is ≥ 10× faster than the fastest peer's",
    met: c * 10 <= cp,
    detail: `containers 1–10: nsnet ${ms(c)} vs ${connectPeer} ${ms(cp)} = ${x(cp / c)} faster (needs 10×: nsnet ≤ ${ms(cp / 10)})` + (also.length ? `; ${also.join('; ')}` : '') +
      `. Starting a process costs ${ms(cost.spawnMs)} here (/bin/true from this harness; under \`ip netns exec\` ${ms(cost.execMs)}) and the peers start ` +
      'dozens per connect (their plugins and an iptables run per rule), so their times — and this ratio — move with what process creation costs on the machine',
  });

  const nsWindows = passes.nsnet!.windows;
  const top = nsWindows[nsWindows.length - 1]!;
  const base = nsWindows.find((w) => w.level === WINDOW)!;
  const topMed = med(top.connect);
  const baseMed = med(base.connect);
  out.push({
    id: 'connect-flat',
    text: `nsnet's connect of the ${top.level.toLocaleString('en-US')}th container is within 1.5× of the 1st`,
    met: topMed <= 1.5 * baseMed,
    detail: `one network filling up: median of containers ${range(top.level)} ${ms(topMed)} vs its containers 1–10 ${ms(baseMed)} = ${x(topMed / baseMed)}; ` +
      `${nsWindows.map((w) => `${range(w.level)} ${ms(med(w.connect))}`).join(', ')} (containers 1–10 of the small rounds: ${ms(c)}, ${x(topMed / c)})`,
  });

  const discPeer = fastestPeer({ cni: small.cni.disconnect, netavark: small.netavark.disconnect })!;
  const d = med(small.nsnet.disconnect);
  const dp = med(small[discPeer].disconnect);
  out.push({
    id: 'disconnect-5x',
    text: "nsnet's median disconnect is ≥ 5× faster than the fastest peer's",
    met: d * 5 <= dp,
    detail: `containers 10–1: nsnet ${ms(d)} vs ${discPeer} ${ms(dp)} = ${x(dp / d)} faster (needs 5×: nsnet ≤ ${ms(dp / 5)})` +
      (small.nsnet.reaped.length ? `; waiting for the veth's deletion too (disconnect() + reap()): ${ms(med(small.nsnet.reaped))} = ${x(dp / med(small.nsnet.reaped))}` : ''),
  });

  const nr = rules.nsnet!;
  const counts = Object.entries(nr).map(([n, r]) => `${Number(n).toLocaleString('en-US')}: ${r.rules}`);
  const values = new Set(Object.values(nr).map((r) => r.rules));
  const peerText = PEERS.map((t) => `${t} ${Object.entries(rules[t]!).map(([n, r]) => `${r.rules} at ${Number(n).toLocaleString('en-US')}`).join(', ')}`).join('; ');
  out.push({
    id: 'rules-constant',
    text: "nsnet's rule count does not grow with containers",
    met: values.size === 1,
    detail: `nsnet rules after N containers — ${counts.join(', ')}; iptables rules of the peers: ${peerText}`,
  });
  return out;
}
