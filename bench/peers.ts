/**
 * The container-network tools the bridge, ports and dataplane suites drive, each in a "host"
 * namespace of its own:
 *
 *   nsnet     NetworkHost.open({ netns: HOST, stateDir: tmpdir }), createNetwork (untimed), then
 *             connect() / disconnect() awaited one at a time, timed in process (handle open)
 *   cni       /usr/lib/cni/bridge (isGateway, ipMasq, hairpinMode, host-local IPAM with its own
 *             dataDir) then /usr/lib/cni/portmap (snat, runtimeConfig.portMappings, prevResult =
 *             bridge's result); DEL runs the chain in reverse. Each plugin is a process run with
 *             `ip netns exec HOST`, the CNI_* variables in its environment and the config on stdin
 *   netavark  `ip netns exec HOST netavark --config DIR setup|teardown /var/run/netns/C` with the
 *             network options JSON on stdin, NETAVARK_FW=iptables (it does no IPAM: the bench
 *             passes the address)
 *
 * Each in one of three address families (`Family`): 4 — an IPv4 network, ports published on
 * every address (the default); 6 — a dual-stack network (10.88.0.0/16 + fd00:88::/64), ports
 * published on IPv6 only (nsnet `hostIp: '::'`, portmap and netavark `hostIP` `::`, which both
 * read as "IPv6, every address"); 'both' — the dual-stack network, ports published on both
 * families (no host address).
 *
 * and the **replay** of the peers' state (see Replay below): N containers' worth of what the
 * peers write, restored in one `iptables-restore`, so that the 1,000th container (or the
 * 10,001st published port) can be timed without running 1,000 real ADDs first. The replay is
 * proved against real ADDs by proveReplay() in every run that uses it.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { flushLinks, globalBatch, ipBatch, now, run, sleep, withNetns } from './common';

export const SUBNET = '10.88.0.0/16';
export const GATEWAY = '10.88.0.1';
export const SUBNET6 = 'fd00:88::/64';
export const GATEWAY6 = 'fd00:88::1';
export const CNI_PATH = '/usr/lib/cni';
export const NETAVARK = '/usr/lib/podman/netavark';
export const NETWORK = 'bench';
export const ENV_PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin:/usr/bin:/bin`;
/** Host ports reserved per container: container s publishes hostPort(s, 0 … PORT_SLOTS-1). */
export const PORT_SLOTS = 10;

export type ToolId = 'nsnet' | 'cni' | 'netavark';
/** Which families the network has and the ports are published on (see the file comment). */
export type Family = 4 | 6 | 'both';
/** The host address ports are published on, per family (undefined: none given). */
const hostIpFor = (f: Family): string | undefined => (f === 6 ? '::' : undefined);
export const PEERS: ToolId[] = ['cni', 'netavark'];

export const netnsFile = (name: string): string => `/var/run/netns/${name}`;
/** Host port j of container s: 20000 + 10·(s−1) + j (distinct up to container 4,553). */
export const hostPort = (serial: number, j = 0): number => 20000 + PORT_SLOTS * (serial - 1) + j;
export const containerPort = (j: number): number => 80 + j;
/** The address of container s: .2, .3, … (CNI's host-local hands them out in this order; netavark is given it). */
export const addressOf = (serial: number): string => `10.88.${((serial + 1) >> 8) & 255}.${(serial + 1) & 255}`;
/** The IPv6 address of container s on a dual-stack network: fd00:88::2, ::3, … (host-local's order too). */
export const address6Of = (serial: number): string => `fd00:88::${(serial + 1).toString(16)}`;
/** A name as a 64-hex-digit container id (the form runtimes use). */
export const hex64 = (s: string): string => Buffer.from(s).toString('hex').padStart(64, '0').slice(-64);
const BRIDGE: Record<ToolId, string> = { nsnet: 'nsbr-bench', cni: 'cni0', netavark: 'nvbr0' };

/** `ip netns exec HOST CMD…` with an environment and stdin, timed as a whole process. */
export function inHost(host: string, cmd: string[], input: string, env: Record<string, string> = {}): { stdout: string; ms: number } {
  const r = run('ip', ['netns', 'exec', host, ...cmd], { input, env: { ...process.env, PATH: ENV_PATH, ...env } });
  return { stdout: r.stdout, ms: r.ms };
}

export function nftRuleCount(host: string): number {
  const j = JSON.parse(run('ip', ['netns', 'exec', host, 'nft', '-j', 'list', 'ruleset']).stdout) as { nftables: Record<string, unknown>[] };
  return j.nftables.filter((o) => 'rule' in o).length;
}

/** `iptables-save` (or, `v6`, `ip6tables-save`) in the host. */
export function iptablesSave(host: string, v6 = false): string {
  return run('ip', ['netns', 'exec', host, v6 ? 'ip6tables-save' : 'iptables-save'], { env: { ...process.env, PATH: ENV_PATH } }).stdout;
}

/** iptables rules (`-A` lines) in the host: IPv4's, plus IPv6's when `v6`. */
export function iptablesRuleCount(host: string, v6 = false): number {
  const count = (text: string): number => text.split('\n').filter((l) => l.startsWith('-A')).length;
  return count(iptablesSave(host)) + (v6 ? count(iptablesSave(host, true)) : 0);
}

function containerHasAddress(ns: string, serial?: number): boolean {
  const out = run('ip', ['-n', ns, '-4', '-o', 'addr', 'show', 'dev', 'eth0']).stdout;
  return serial === undefined ? /inet 10\.88\.\d+\.\d+\/16 /u.test(out) : out.includes(`inet ${addressOf(serial)}/16 `);
}

export interface RuleCount {
  rules: number;
  nft: number;
}

/** A tool set up in one host namespace: connects and disconnects containers by serial number. */
export interface Driver {
  tool: ToolId;
  family: Family;
  /** The bridge the tool puts its containers on. */
  bridge: string;
  /** Connects container `serial` publishing `ports` TCP ports (hostPort(serial, j) → containerPort(j)); returns ms. */
  connect(serial: number, ports?: number): Promise<number>;
  disconnect(serial: number): Promise<number>;
  /** nsnet only: disconnect() then reap() (the retired veth deleted before returning). */
  disconnectReaped?(serial: number): Promise<number>;
  /** The firewall's rule count in the host namespace (primary) and the nft rule count. */
  rules(): RuleCount;
  /** Checks that container `serial` is wired (address in the container, its first port in the firewall). */
  verify(serial: number): void;
  /** The peers: where their own state lives besides the firewall (CNI's host-local data dir). */
  stateDir?: string;
  close(): Promise<void>;
}

async function nsnetDriver(host: string, cname: (s: number) => string, family: Family): Promise<Driver> {
  // Loaded here, not at the top: a suite that only drives the peers (cni) never loads nsnet's
  // addon through this file, and bench/cni.ts's own main() can check the sandbox first.
  const { NetworkHost } = await import('../lib/index');
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-state-'));
  const h = await NetworkHost.open({ netns: host, stateDir });
  await h.createNetwork({ name: NETWORK, subnet: SUBNET, bridge: BRIDGE.nsnet, ...(family !== 4 ? { subnet6: SUBNET6 } : {}) });
  const hostIp = hostIpFor(family);
  return {
    tool: 'nsnet',
    family,
    bridge: BRIDGE.nsnet,
    async connect(s, ports = 1) {
      const publish = Array.from({ length: ports }, (_, j) => ({
        hostPort: hostPort(s, j),
        containerPort: containerPort(j),
        protocol: 'tcp' as const,
        ...(hostIp ? { hostIp } : {}),
      }));
      const t0 = now();
      await h.connect(NETWORK, { id: `c${s}`, netns: netnsFile(cname(s)), publish });
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

function cniDriver(host: string, cname: (s: number) => string, family: Family): Driver {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-cni-'));
  const dual = family !== 4;
  const bridgeConf = {
    cniVersion: '1.0.0',
    name: NETWORK,
    type: 'bridge',
    bridge: BRIDGE.cni,
    isGateway: true,
    ipMasq: true,
    hairpinMode: true,
    ipam: {
      type: 'host-local',
      dataDir: path.join(dir, 'ipam'),
      ranges: [[{ subnet: SUBNET, gateway: GATEWAY }], ...(dual ? [[{ subnet: SUBNET6, gateway: GATEWAY6 }]] : [])],
      routes: [{ dst: '0.0.0.0/0' }, ...(dual ? [{ dst: '::/0' }] : [])],
    },
  };
  const hostIP = hostIpFor(family);
  const published = new Map<number, number>();
  const portmapConf = (s: number): Record<string, unknown> => ({
    cniVersion: '1.0.0',
    name: NETWORK,
    type: 'portmap',
    snat: true,
    capabilities: { portMappings: true },
    runtimeConfig: {
      portMappings: Array.from({ length: published.get(s) ?? 1 }, (_, j) => ({
        hostPort: hostPort(s, j),
        containerPort: containerPort(j),
        protocol: 'tcp',
        ...(hostIP ? { hostIP } : {}),
      })),
    },
  });
  const env = (command: string, s: number): Record<string, string> => ({
    CNI_COMMAND: command,
    CNI_CONTAINERID: `c${s}`,
    CNI_NETNS: netnsFile(cname(s)),
    CNI_IFNAME: 'eth0',
    CNI_PATH,
  });
  const plugin = (type: string, command: string, s: number, conf: unknown): string =>
    inHost(host, [path.join(CNI_PATH, type)], JSON.stringify(conf), env(command, s)).stdout;
  /** The chain's final result per container (what a runtime caches for DEL). */
  const results = new Map<number, unknown>();
  return {
    tool: 'cni',
    family,
    bridge: BRIDGE.cni,
    stateDir: dir,
    async connect(s, ports = 1) {
      published.set(s, ports);
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
    rules: () => ({ rules: iptablesRuleCount(host, dual), nft: nftRuleCount(host) }),
    verify(s) {
      // host-local picks the address (the next free one), so any address of the subnet will do.
      if (!containerHasAddress(cname(s))) throw new Error(`cni: container ${s} has no address`);
      if (!iptablesSave(host, family === 6).includes(`--dport ${hostPort(s)} `))
        throw new Error(`cni: port ${hostPort(s)} of container ${s} has no ip${family === 6 ? '6' : ''}tables rule`);
    },
    async close() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** netavark's network options (stdin of setup/teardown) for container s publishing `ports` ports over `family`. */
export function netavarkOptions(s: number, ports = 1, family: Family = 4): string {
  const dual = family !== 4;
  return JSON.stringify({
    container_id: hex64(`c${s}`),
    container_name: `c${s}`,
    networks: { [NETWORK]: { static_ips: [addressOf(s), ...(dual ? [address6Of(s)] : [])], interface_name: 'eth0' } },
    network_info: {
      [NETWORK]: {
        driver: 'bridge',
        id: hex64('nsnet-bench-network'),
        name: NETWORK,
        network_interface: BRIDGE.netavark,
        subnets: [{ subnet: SUBNET, gateway: GATEWAY }, ...(dual ? [{ subnet: SUBNET6, gateway: GATEWAY6 }] : [])],
        internal: false,
        ipv6_enabled: dual,
        dns_enabled: false,
      },
    },
    port_mappings: Array.from({ length: ports }, (_, j) => ({
      host_ip: hostIpFor(family) ?? '',
      container_port: containerPort(j),
      host_port: hostPort(s, j),
      range: 1,
      protocol: 'tcp',
    })),
  });
}

function netavarkDriver(host: string, cname: (s: number) => string, family: Family): Driver {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-netavark-'));
  const dual = family !== 4;
  const published = new Map<number, number>();
  const options = (s: number): string => netavarkOptions(s, published.get(s) ?? 1, family);
  const env = { NETAVARK_FW: 'iptables' };
  return {
    tool: 'netavark',
    family,
    bridge: BRIDGE.netavark,
    async connect(s, ports = 1) {
      published.set(s, ports);
      return inHost(host, [NETAVARK, '--config', dir, 'setup', netnsFile(cname(s))], options(s), env).ms;
    },
    async disconnect(s) {
      return inHost(host, [NETAVARK, '--config', dir, 'teardown', netnsFile(cname(s))], options(s), env).ms;
    },
    rules: () => ({ rules: iptablesRuleCount(host, dual), nft: nftRuleCount(host) }),
    verify(s) {
      if (!containerHasAddress(cname(s), s)) throw new Error(`netavark: container ${s} has not the address ${addressOf(s)}`);
      if (!iptablesSave(host, family === 6).includes(`--dport ${hostPort(s)} `))
        throw new Error(`netavark: port ${hostPort(s)} of container ${s} has no ip${family === 6 ? '6' : ''}tables rule`);
    },
    async close() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ------------------------------------------------------------------------------ one host

/** A fresh host namespace, with container namespaces made on demand (untimed). */
export interface HostNamespace {
  name: string;
  /** The namespace name of container `serial`. */
  cname(serial: number): string;
  /** Makes the namespaces of containers from..to that do not exist yet (one `ip -batch`). */
  containers(from: number, to: number): void;
}

/** A tool set up in a fresh host namespace. */
export interface Host extends HostNamespace {
  driver: Driver;
  /** The replay of the peers' state (undefined for nsnet). */
  replay?: Replay;
}

/**
 * A fresh host namespace with no tool in it (withHost sets one up; the cni suite runs its own
 * nsnet-cni client in one). Afterwards: the host's links removed in one group delete (the veth
 * peers go with them), the container namespaces, the namespaces `alsoDelete()` names and the
 * host namespace deleted, and a pause for the kernel's namespace teardown scaled to how many
 * there were.
 */
export async function withHostNamespace<T>(fn: (h: HostNamespace) => Promise<T>, alsoDelete: () => string[] = () => []): Promise<T> {
  const made = new Set<number>();
  const result = await withNetns(
    (name) => {
      const cname = (s: number): string => `${name}c${s}`;
      const containers = (from: number, to: number): void => {
        const lines: string[] = [];
        for (let s = from; s <= to; s++) {
          if (made.has(s)) continue;
          made.add(s);
          lines.push(`netns add ${cname(s)}`);
        }
        globalBatch(lines);
      };
      return fn({ name, cname, containers });
    },
    (host) => {
      flushLinks(host);
      globalBatch([...[...made].map((s) => `netns del ${host}c${s}`), ...alsoDelete().map((ns) => `netns del ${ns}`)]);
    },
  );
  const n = made.size;
  if (n >= 100) await sleep(Math.min(4000, 500 + 3 * n));
  return result;
}

/** A fresh host namespace with the tool set up in it (withHostNamespace); the tool is closed first. */
export async function withHost<T>(tool: ToolId, fn: (h: Host) => Promise<T>, family: Family = 4): Promise<T> {
  let sink: string | undefined;
  return withHostNamespace(
    async (ns) => {
      const { name, cname } = ns;
      const driver =
        tool === 'nsnet' ? await nsnetDriver(name, cname, family) : tool === 'cni' ? cniDriver(name, cname, family) : netavarkDriver(name, cname, family);
      const h: Host = { ...ns, driver };
      if (tool !== 'nsnet') {
        sink = `${name}sink`;
        h.replay = new Replay(tool, name, driver, sink);
      }
      try {
        return await fn(h);
      } finally {
        await driver.close();
      }
    },
    () => {
      if (!sink || !sinksMade.has(sink)) return [];
      sinksMade.delete(sink);
      return [sink];
    },
  );
}

/** Sink namespaces made (the container ends of replayed veths live there). */
const sinksMade = new Set<string>();

// ------------------------------------------------------------------------------ replay

/**
 * The peers' state for N containers without N real ADDs. Containers 1 and 2 are added for real
 * (the first makes the bridge and the network's chains); what the second ADD wrote — the
 * iptables lines and host-local files that were not there after the first — is its template.
 * Container s's copy substitutes, token by token, container 2's id, address, host ports and the
 * names derived from the id (CNI: `CNI-` + sha512(name+id)[:24] and `CNI-DN-` + [:21]; netavark:
 * the 64-hex container id) with container s's. The whole ruleset (container 2's save plus the
 * copies, each chain's lines in ADD order) goes back in one `iptables-restore`; CNI's host-local
 * files are written; a veth per replayed container is put on the tool's bridge (its other end
 * in a "sink" namespace, not in a container namespace of its own). proveReplay() shows that
 * the ruleset and IPAM files equal those of real ADDs.
 */
export class Replay {
  /** iptables-save after containers 1 and 2 (and ip6tables-save, on a dual-stack network). */
  private s1: string[] | undefined;
  private s2: string[] | undefined;
  private files1 = new Map<string, string>();
  private files2 = new Map<string, string>();
  /** Ports per container in the template (container 2's). */
  private ports = 1;
  private veths = 0;

  constructor(
    readonly tool: 'cni' | 'netavark',
    readonly host: string,
    readonly driver: Driver,
    readonly sink: string,
  ) {}

  /** Adds containers 1 and 2 for real, with `ports` published each, and records the template. Returns their connect ms. */
  async start(h: Host, ports: number): Promise<[number, number]> {
    this.ports = ports;
    h.containers(1, 2);
    const a = await this.driver.connect(1, ports);
    this.s1 = this.saves();
    this.files1 = readTree(this.driver.stateDir);
    const b = await this.driver.connect(2, ports);
    this.s2 = this.saves();
    this.files2 = readTree(this.driver.stateDir);
    return [a, b];
  }

  /** The saves the replay restores: IPv4's, and IPv6's on a dual-stack network. */
  private saves(): string[] {
    return this.driver.family === 4 ? [iptablesSave(this.host)] : [iptablesSave(this.host), iptablesSave(this.host, true)];
  }

  /** Container 2's tokens mapped to container s's. */
  private tokens(s: number): string[] {
    const id = `c${s}`;
    const t = [id, addressOf(s), ...(this.driver.family !== 4 ? [address6Of(s)] : []), ...Array.from({ length: this.ports }, (_, j) => String(hostPort(s, j)))];
    if (this.tool === 'cni') {
      const h = createHash('sha512')
        .update(NETWORK + id)
        .digest('hex');
      t.push(`CNI-${h.slice(0, 24)}`, `CNI-DN-${h.slice(0, 21)}`);
    } else {
      t.push(hex64(id));
    }
    return t;
  }

  private substituter(s: number): (text: string) => string {
    const from = this.tokens(2);
    const to = this.tokens(s);
    const map = new Map(from.map((f, i) => [f, to[i]!]));
    const alt = [...map.keys()]
      .sort((a, b) => b.length - a.length)
      .map((k) => k.replace(/[.*+?^${}()|[\]\\]/gu, '\\$&'))
      .join('|');
    const re = new RegExp(`(?<![\\w.])(${alt})(?![\\w])`, 'gu');
    return (text) => text.replace(re, (m) => map.get(m) ?? m);
  }

  /**
   * Replays containers from..to (from ≥ 3) on top of containers 1 and 2: one iptables-restore
   * of the whole ruleset, the host-local files, a veth each on the bridge. Returns ms taken.
   */
  apply(from: number, to: number, opts: { veths?: boolean } = {}): number {
    if (!this.s1 || !this.s2) throw new Error('replay: start() first');
    if (to < from) return 0;
    const t0 = now();
    const subs = Array.from({ length: to - from + 1 }, (_, i) => this.substituter(from + i));
    for (const [i, save2] of this.s2.entries()) {
      const tables = parseSave(save2);
      const before = parseSave(this.s1[i]!);
      const template: { table: string; line: string }[] = [];
      for (const [name, t] of tables) {
        const b = before.get(name);
        for (const d of t.decls.values()) if (!b || ![...b.decls.values()].includes(d)) template.push({ table: name, line: d });
        for (const [chain, rules] of t.rules) {
          const old = new Set(b?.rules.get(chain) ?? []);
          for (const r of rules) if (!old.has(r)) template.push({ table: name, line: r });
        }
      }
      for (const sub of subs) for (const { table, line } of template) addLine(tables.get(table)!, sub(line));
      inHost(this.host, [i === 0 ? 'iptables-restore' : 'ip6tables-restore'], renderSave(tables));
    }
    // host-local: files the second ADD created (one per address) copied per container; files it
    // changed (last_reserved_ip) take the last container's content.
    if (this.driver.stateDir) {
      for (const [rel, content] of this.files2) {
        const old = this.files1.get(rel);
        if (old === content) continue;
        if (old === undefined) {
          for (let s = from; s <= to; s++) {
            const sub = this.substituter(s);
            writeFile(path.join(this.driver.stateDir, sub(rel)), sub(content));
          }
        } else {
          writeFile(path.join(this.driver.stateDir, rel), this.substituter(to)(content));
        }
      }
    }
    if (opts.veths !== false) {
      if (!sinksMade.has(this.sink)) {
        globalBatch([`netns add ${this.sink}`]);
        sinksMade.add(this.sink);
      }
      const lines: string[] = [];
      for (let s = from; s <= to; s++) {
        const v = ++this.veths;
        lines.push(`link add vr${v} type veth peer name vp${v} netns ${this.sink}`, `link set vr${v} master ${this.driver.bridge} up`);
        if (this.tool === 'cni') lines.push(`link set vr${v} type bridge_slave hairpin on`);
      }
      ipBatch(this.host, lines);
    }
    return now() - t0;
  }
}

function writeFile(p: string, content: string): void {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
}

/** Every file under dir (relative path → content). */
function readTree(dir: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!dir || !fs.existsSync(dir)) return out;
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(path.relative(dir, p), fs.readFileSync(p, 'utf8'));
    }
  };
  walk(dir);
  return out;
}

interface SaveTable {
  decls: Map<string, string>;
  rules: Map<string, string[]>;
}

/** iptables-save text → tables, each with its chain declarations and its rules chain by chain, in order. */
export function parseSave(text: string): Map<string, SaveTable> {
  const tables = new Map<string, SaveTable>();
  let cur: SaveTable | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (!line || line.startsWith('#') || line === 'COMMIT') continue;
    if (line.startsWith('*')) {
      cur = { decls: new Map(), rules: new Map() };
      tables.set(line.slice(1), cur);
    } else if (cur) {
      addLine(cur, line);
    }
  }
  return tables;
}

function addLine(t: SaveTable, line: string): void {
  if (line.startsWith(':')) {
    // The counters are not state; a declaration is `:CHAIN POLICY`.
    const [chain, policy] = line.slice(1).split(' ');
    t.decls.set(chain!, `:${chain} ${policy}`);
  } else if (line.startsWith('-A ')) {
    const chain = line.split(' ')[1]!;
    let list = t.rules.get(chain);
    if (!list) t.rules.set(chain, (list = []));
    list.push(line);
  }
}

function renderSave(tables: Map<string, SaveTable>): string {
  const out: string[] = [];
  for (const [name, t] of tables) {
    out.push(`*${name}`, ...[...t.decls.values()].map((d) => `${d} [0:0]`));
    for (const rules of t.rules.values()) out.push(...rules);
    out.push('COMMIT');
  }
  return out.join('\n') + '\n';
}

/** A ruleset in a canonical text: tables and chains sorted by name, each chain's rules in order. */
export function canonicalSave(text: string): string {
  const out: string[] = [];
  const tables = parseSave(text);
  for (const name of [...tables.keys()].sort()) {
    const t = tables.get(name)!;
    out.push(`*${name}`, ...[...t.decls.values()].sort());
    for (const chain of [...t.rules.keys()].sort()) out.push(...t.rules.get(chain)!);
  }
  return out.join('\n');
}

export interface ReplayProof {
  tool: 'cni' | 'netavark';
  /** The address family the state was made in (see Family). */
  family?: Family;
  containers: number;
  ports_per_container: number;
  /** The ruleset (canonical iptables-save) of real ADDs equals the replayed one. */
  rules_equal: boolean;
  /** CNI: host-local's files (names and contents) equal. */
  files_equal: boolean;
  rules: number;
  /** The first differing lines, if any. */
  difference?: string[];
}

/**
 * Proves the replay for a small N: host A gets containers 1..n by real ADDs; host B gets 1 and 2
 * for real and 3..n replayed. Their rulesets (canonical iptables-save) and host-local files
 * must be equal.
 */
export async function proveReplay(tool: 'cni' | 'netavark', n: number, ports: number, family: Family = 4): Promise<ReplayProof> {
  // Both families' rulesets, one after the other (the IPv6 one marked), on a dual-stack network.
  const save = (host: string): string =>
    family === 4
      ? iptablesSave(host)
      : `${iptablesSave(host)}\n${canonicalSave(iptablesSave(host, true))
          .split('\n')
          .map((l) => `6 ${l}`)
          .join('\n')}`;
  const real = await withHost(
    tool,
    async (h) => {
      h.containers(1, n);
      for (let s = 1; s <= n; s++) await h.driver.connect(s, ports);
      h.driver.verify(n);
      return { save: save(h.name), files: readTree(h.driver.stateDir) };
    },
    family,
  );
  const replayed = await withHost(
    tool,
    async (h) => {
      await h.replay!.start(h, ports);
      h.replay!.apply(3, n);
      return { save: save(h.name), files: readTree(h.driver.stateDir) };
    },
    family,
  );
  const canon = (text: string): string[] =>
    family === 4
      ? canonicalSave(text).split('\n')
      : [
          ...canonicalSave(
            text
              .split('\n')
              .filter((l) => !l.startsWith('6 '))
              .join('\n'),
          ).split('\n'),
          ...text.split('\n').filter((l) => l.startsWith('6 ')),
        ];
  const a = canon(real.save);
  const b = canon(replayed.save);
  const rulesEqual = a.join('\n') === b.join('\n');
  const fa = JSON.stringify([...real.files].sort());
  const fb = JSON.stringify([...replayed.files].sort());
  const difference: string[] = [];
  if (!rulesEqual) {
    const sa = new Set(a);
    const sb = new Set(b);
    difference.push(
      ...a
        .filter((l) => !sb.has(l))
        .slice(0, 5)
        .map((l) => `real only: ${l}`),
      ...b
        .filter((l) => !sa.has(l))
        .slice(0, 5)
        .map((l) => `replay only: ${l}`),
    );
    if (!difference.length) difference.push('same lines in another order');
  }
  if (fa !== fb) difference.push(`host-local files differ: real ${fa.slice(0, 300)} / replayed ${fb.slice(0, 300)}`);
  return {
    tool,
    ...(family !== 4 ? { family } : {}),
    containers: n,
    ports_per_container: ports,
    rules_equal: rulesEqual,
    files_equal: fa === fb,
    rules: a.filter((l) => l.startsWith('-A') || l.startsWith('6 -A')).length,
    ...(difference.length ? { difference } : {}),
  };
}
