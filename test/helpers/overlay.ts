/**
 * The overlay tests' world: a "wire" namespace with a bridge (the underlay switch, where etcd
 * runs and an nft counter watches VXLAN), host namespaces joined to it by veths (198.18.0.N),
 * one agent process per host (test/helpers/overlay-agent.ts under `ip netns exec`), and
 * containers behind each host. Everything is registered for teardown.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hostIfname } from '../../lib/devices/marks';
import { attachVeth } from '../../lib/devices/veth';
import type { OverlayDevices } from '../../lib/overlay/devices';
import { macFromIp } from '../../lib/ipam/index';
import { Netlink } from '../../lib/netlink/netlink';
import { makeNetns, registerCleanup, uniqueName } from './sandbox';
import { ipJson, sh } from './oracle';

export const WIRE_IP = '198.18.0.254';
const AGENT = path.join(__dirname, 'overlay-agent.js');

export interface World {
  wire: string;
  /** Host namespaces, index i has underlay address 198.18.0.(i+1). */
  hosts: string[];
}

/** The underlay address of host i. */
export const hostIp = (i: number): string => `198.18.0.${i + 1}`;

/** A wire namespace with a bridge and `n` hosts (underlay veth `eth0`, MTU `mtu`), plus a leg for this process when `local`. */
export async function makeWorld(n: number, opts: { mtu?: number; local?: boolean } = {}): Promise<World> {
  const wire = await makeNetns('wire');
  sh('ip', ['-n', wire, 'link', 'add', 'wbr', 'type', 'bridge']);
  sh('ip', ['-n', wire, 'addr', 'add', `${WIRE_IP}/24`, 'dev', 'wbr']);
  sh('ip', ['-n', wire, 'link', 'set', 'wbr', 'up', 'mtu', String(opts.mtu ?? 1500)]);
  const hosts: string[] = [];
  for (let i = 0; i < n; i++) {
    const h = await makeNetns(`h${i + 1}`);
    sh('ip', [
      '-n',
      wire,
      'link',
      'add',
      `w${i + 1}`,
      'mtu',
      String(opts.mtu ?? 1500),
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'mtu',
      String(opts.mtu ?? 1500),
      'netns',
      h,
    ]);
    sh('ip', ['-n', wire, 'link', 'set', `w${i + 1}`, 'master', 'wbr', 'up']);
    sh('ip', ['-n', h, 'addr', 'add', `${hostIp(i)}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', h, 'link', 'set', 'eth0', 'up']);
    hosts.push(h);
  }
  if (opts.local) {
    // This process's own leg on the wire (in the test sandbox's namespace), to talk to etcd.
    const leg = uniqueName('wl');
    sh('ip', ['link', 'add', leg, 'type', 'veth', 'peer', 'name', 'wlocal', 'netns', wire]);
    registerCleanup(() => spawnSync('ip', ['link', 'del', leg]), `del ${leg}`);
    sh('ip', ['-n', wire, 'link', 'set', 'wlocal', 'master', 'wbr', 'up']);
    sh('ip', ['addr', 'add', '198.18.0.200/24', 'dev', leg]);
    sh('ip', ['link', 'set', leg, 'up']);
  }
  return { wire, hosts };
}

/** Waits until `fn` returns a truthy value (polling), or throws with `what`. */
export async function until<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 15000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** etcd in the wire namespace, with its own data dir; stop() and start() again keep the data. */
export class EtcdServer {
  private proc: ChildProcess | undefined;
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-etcd-'));
  readonly url = `http://${WIRE_IP}:2379`;
  log = '';

  constructor(private readonly wire: string) {
    registerCleanup(async () => {
      await this.stop('SIGKILL');
      fs.rmSync(this.dir, { recursive: true, force: true });
    }, 'etcd');
  }

  async start(): Promise<void> {
    const p = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.wire,
        'etcd',
        '--name',
        'e0',
        '--data-dir',
        path.join(this.dir, 'data'),
        '--listen-client-urls',
        this.url,
        '--advertise-client-urls',
        this.url,
        '--listen-peer-urls',
        'http://127.0.0.1:2380',
        '--initial-advertise-peer-urls',
        'http://127.0.0.1:2380',
        '--initial-cluster',
        'e0=http://127.0.0.1:2380',
        '--auto-compaction-retention',
        '0',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.proc = p;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`etcd did not start:\n${this.log.slice(-2000)}`)), 20000);
      const onData = (d: Buffer): void => {
        this.log += d.toString();
        if (this.log.includes('ready to serve client requests')) {
          clearTimeout(t);
          resolve();
        }
      };
      p.stdout!.on('data', onData);
      p.stderr!.on('data', onData);
      p.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`etcd exited (${code}):\n${this.log.slice(-2000)}`));
      });
    });
    this.log = '';
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    this.proc = undefined;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await exited;
  }
}

/** A line the agent process printed. */
export type AgentLine = Record<string, unknown> & { event: string };

/** One host's agent process (test/helpers/overlay-agent.ts) inside the host's namespace. */
export class AgentProcess {
  readonly lines: AgentLine[] = [];
  private proc: ChildProcess;
  private stderr = '';
  networks: OverlayDevices[] = [];

  constructor(
    readonly ns: string,
    readonly args: Record<string, unknown>,
  ) {
    this.proc = this.spawn();
    registerCleanup(() => this.kill('SIGKILL'), `agent ${ns}`);
  }

  private spawn(): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', this.ns, process.execPath, AGENT, JSON.stringify(this.args)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    p.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          this.lines.push(JSON.parse(line) as AgentLine);
        } catch {
          this.stderr += `${line}\n`;
        }
      }
    });
    p.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    return p;
  }

  /** Waits for a line matching `pred` printed after the `from`-th line. */
  async waitFor(pred: (l: AgentLine) => boolean, what: string, timeoutMs = 20000, from = 0): Promise<AgentLine> {
    return until<AgentLine | undefined>(
      `${this.ns}: ${what}`,
      () => {
        const fatal = this.lines.find((l) => l.event === 'fatal');
        if (fatal) throw new Error(`agent ${this.ns} died: ${String(fatal.message)}\n${this.stderr}`);
        return this.lines.slice(from).find(pred);
      },
      timeoutMs,
    ).then(
      (l) => l!,
      (e: Error) => {
        throw new Error(
          `${e.message}\nagent output:\n${this.lines
            .slice(-20)
            .map((l) => JSON.stringify(l))
            .join('\n')}\n${this.stderr.slice(-2000)}`,
        );
      },
    );
  }

  async ready(): Promise<OverlayDevices[]> {
    const l = await this.waitFor((x) => x.event === 'ready', 'ready');
    this.networks = l.networks as OverlayDevices[];
    return this.networks;
  }

  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill(signal);
    await exited;
  }

  /** Starts the process again with the same arguments. */
  restart(): void {
    this.lines.length = 0;
    this.proc = this.spawn();
  }
}

/** A container namespace behind a host: a veth on the network's bridge with `ip` (from the host's block). */
export async function container(hostNs: string, d: OverlayDevices, id: string, ip: string): Promise<string> {
  const c = await makeNetns('c');
  const nl = await Netlink.open({ netns: hostNs });
  try {
    await attachVeth(
      nl,
      { name: d.network, bridge: d.bridge, mtu: d.mtu, subnet: d.subnet, internal: false },
      {
        id,
        ifname: 'eth0',
        hostIfname: hostIfname(d.network, id),
        mac: macFromIp(ip),
        ipv4: ip,
        gateway: d.gateway,
      },
      c,
    );
  } finally {
    nl.close();
  }
  return c;
}

/** Routes, neighbours and FDB entries a host's VXLAN device has (through iproute2). */
export function peerState(ns: string, vx: string): { routes: string[]; neighs: string[]; fdb: string[] } {
  const routes = (ipJson(['route', 'show', 'dev', vx], ns) as { dst: string; gateway?: string; flags?: string[]; protocol?: string }[])
    .filter((r) => r.gateway)
    .map((r) => `${r.dst} via ${r.gateway}${r.flags?.includes('onlink') ? ' onlink' : ''} proto ${r.protocol ?? 'boot'}`); // (ip -j omits proto boot)
  const neighs = (ipJson(['neigh', 'show', 'dev', vx], ns) as { dst: string; lladdr?: string; state?: string[] }[]).map(
    (n) => `${n.dst} ${n.lladdr} ${(n.state ?? []).join(',')}`,
  );
  const fdb = (JSON.parse(sh('bridge', ['-j', 'fdb', 'show', 'dev', vx], ns) || '[]') as { mac: string; dst?: string; state?: string }[])
    .filter((f) => f.dst)
    .map((f) => `${f.mac} dst ${f.dst} ${f.state ?? ''}`.trim());
  return { routes, neighs, fdb };
}

/** Sends one UDP datagram of `size` bytes with DF from `ns` (python3): 'sent' or the errno name. */
export function udpDf(ns: string, addr: string, port: number, size: number): string {
  const code = `
import socket, errno
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER, IP_PMTUDISC_DO (linux/in.h)
try:
    s.sendto(b'x' * ${size}, (${JSON.stringify(addr)}, ${port}))
    print('sent')
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
`;
  return sh('python3', ['-c', code], ns).trim();
}

/** A UDP listener in `ns` that records the size of each datagram. */
export async function udpSizes(ns: string, port: number): Promise<{ sizes: number[]; stop: () => void }> {
  const p = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      `
    const s = require('dgram').createSocket('udp4');
    s.on('message', (m) => console.log(m.length));
    s.bind(${port}, () => console.log('ready'));
    setTimeout(() => process.exit(0), 60000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const sizes: number[] = [];
  registerCleanup(() => {
    p.kill('SIGKILL');
  }, 'udp listener');
  await new Promise<void>((resolve) => {
    let ready = false;
    p.stdout!.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n').filter(Boolean)) {
        if (line === 'ready') {
          ready = true;
          resolve();
        } else if (ready) sizes.push(Number(line));
      }
    });
  });
  return { sizes, stop: () => p.kill('SIGKILL') };
}

/** An nft counter of UDP to `port` on the wire's bridge (family bridge, forward hook). */
export function countVxlan(wire: string, port: number): () => number {
  sh('nft', ['-f', '-'], wire, { input: `table bridge ovcount {\n chain f {\n  type filter hook forward priority 0;\n  udp dport ${port} counter\n }\n}\n` });
  return () => {
    const out = JSON.parse(sh('nft', ['-j', 'list', 'table', 'bridge', 'ovcount'], wire)) as {
      nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[];
    };
    for (const o of out.nftables) for (const e of o.rule?.expr ?? []) if (e.counter) return e.counter.packets;
    return 0;
  };
}
