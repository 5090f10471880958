/**
 * `nsnet demo`: every network mode with real traffic, in a world of namespaces the demo makes
 * and removes: a "host" namespace (NetworkHost's `netns`), an "external" peer beyond the host's
 * uplink, a "lan" peer on a macvlan parent's L2 segment, and the containers. Each step runs the
 * real `nsnet` CLI (as a user would type it, with NSNET_HOST_NETNS / NSNET_STATE_DIR pointing
 * into the demo's world) and checks the outcome independently: traffic between namespaces,
 * conntrack entries, the links inside a namespace. A table of what worked closes the run.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Conntrack } from '../../conntrack';
import { NetworkHost } from '../../host';
import type { Endpoint, Network } from '../../host-types';
import { Netlink } from '../../netlink/netlink';
import { NfTables } from '../../nftables/nftables';
import { table } from '../format';
import { ask, serve } from './traffic';
import { World } from './world';

export type StepResult = 'ok' | 'FAILED' | 'SKIPPED';

export interface DemoStep {
  mode: string;
  check: string;
  result: StepResult;
  detail: string;
}

export interface DemoReport {
  ok: boolean;
  steps: DemoStep[];
}

/** The demo's addresses (private: they exist only inside the demo's namespaces). */
const NET = {
  hostUplink: '198.18.0.1', // RFC 2544 benchmarking range: never a real network
  external: '198.18.0.2',
  bridgeSubnet: '172.20.0.0/16',
  lanSubnet: '192.168.77.0/24',
  lanPeer: '192.168.77.1',
  underlay: ['198.18.7.1', '198.18.7.2'],
  overlay: '10.88.0.0/16',
};

const CLI_TIMEOUT_MS = 60000;

/** A step whose failure makes the rest of its section meaningless. */
class SectionAborted extends Error {}

function expect(cond: boolean, why: string): void {
  if (!cond) throw new Error(why);
}

interface CliResult {
  status: number | null;
  /** The JSON document the command printed (`{ error: { code } }` on failure), if any. */
  doc: { error?: { code?: string } } | undefined;
  stderr: string;
  stdout: string;
}

export class Demo {
  readonly steps: DemoStep[] = [];
  private readonly bin: string;
  private readonly env: NodeJS.ProcessEnv;
  private host = '';
  private ext = '';

  constructor(
    readonly world: World,
    private readonly log: (line: string) => void,
  ) {
    // bin/nsnet of this package (dist/lib/cli/demo → ../../../../bin/nsnet), else whatever ran us.
    const own = path.join(__dirname, '..', '..', '..', '..', 'bin', 'nsnet');
    this.bin = fs.existsSync(own) ? own : process.argv[1]!;
    // NSNET_CNI_SOCKET=none: its connects start no nsnet daemon to serve names (one would outlive
    // the demo's namespaces; the demo shows no DNS).
    this.env = { ...process.env, NSNET_STATE_DIR: world.stateDir, NSNET_CNI_SOCKET: 'none' };
  }

  /** Runs `nsnet ARGS` (with --json for the demo to read; printed without it). */
  async cli(args: string[], opts: { show?: boolean; human?: boolean } = {}): Promise<CliResult> {
    if (this.world.closing) throw new SectionAborted('interrupted');
    if (opts.show !== false) this.log(`  $ nsnet ${args.map((a) => (/^[\w.,:/=@+-]+$/u.test(a) ? a : `'${a}'`)).join(' ')}`);
    const p = this.world.track(
      spawn(process.execPath, [this.bin, ...(opts.human ? [] : ['--json']), ...args], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d) => {
      stdout += String(d);
    });
    p.stderr!.on('data', (d) => {
      stderr += String(d);
    });
    // A command that hangs fails its step instead of stalling the demo.
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
    }, CLI_TIMEOUT_MS);
    const status = await new Promise<number | null>((resolve) => {
      p.once('exit', (code) => resolve(code));
      p.once('error', () => resolve(null));
    });
    clearTimeout(timer);
    let doc: CliResult['doc'];
    try {
      doc = opts.human ? undefined : JSON.parse(stdout);
    } catch {
      doc = undefined;
    }
    if (opts.human && status === 0) this.log(stdout.replace(/^(?=.)/gmu, '    ').trimEnd());
    return { status, doc, stderr: stderr.trim(), stdout };
  }

  /** Runs `nsnet ARGS` that must succeed; its JSON document. */
  async must<T>(args: string[]): Promise<T> {
    const r = await this.cli(args);
    if (r.status !== 0) throw new Error(r.stderr || `nsnet ${args.join(' ')} exited ${r.status}`);
    return r.doc as unknown as T;
  }

  /** Records one check: ok when fn returns (its detail), FAILED when it throws. `required`: a failure ends the section. */
  async check(mode: string, check: string, fn: () => Promise<string>, required = false): Promise<void> {
    if (this.world.closing) throw new SectionAborted('interrupted');
    let detail: string;
    let result: StepResult = 'ok';
    try {
      detail = await fn();
    } catch (e) {
      if (e instanceof SectionAborted) throw e;
      result = 'FAILED';
      detail = (e as Error).message.split('\n')[0]!;
    }
    if (this.world.closing) throw new SectionAborted('interrupted');
    this.steps.push({ mode, check, result, detail });
    this.log(`  ${result === 'ok' ? '[ok]  ' : '[FAIL]'} ${check}${detail ? ` — ${detail}` : ''}`);
    if (result === 'FAILED' && required) throw new SectionAborted(detail);
  }

  skip(mode: string, check: string, detail: string): void {
    this.steps.push({ mode, check, result: 'SKIPPED', detail });
    this.log(`  [skip] ${check} — ${detail}`);
  }

  /** Runs one section; a required step's failure ends it, and nothing else. */
  async section(mode: string, title: string, fn: () => Promise<void>): Promise<void> {
    if (this.world.closing) return;
    this.log(`\n▸ ${mode}: ${title}`);
    try {
      await fn();
    } catch (e) {
      if (this.world.closing) return;
      if (!(e instanceof SectionAborted)) {
        this.steps.push({ mode, check: 'the section ran to its end', result: 'FAILED', detail: (e as Error).message.split('\n')[0]! });
        this.log(`  [FAIL] ${(e as Error).message.split('\n')[0]}`);
      }
    }
  }

  async run(): Promise<DemoReport> {
    const before = await machineSnapshot();
    const w = this.world;
    const host = await w.netns('host');
    const ext = await w.netns('ext');
    const lan = await w.netns('lan');
    this.host = host;
    this.ext = ext;
    this.env.NSNET_HOST_NETNS = host;
    this.log(`The demo's world (namespaces it made, removed at the end):
  ${host}   the "host": nsnet's networks, bridges and firewall live here; uplink up0 ${NET.hostUplink}/24
  ${ext}    an external peer beyond the uplink, ${NET.external}/24
  ${lan}    a peer on the L2 segment of the host's lan0 (the macvlan parent), ${NET.lanPeer}/24
Every command below runs with
  NSNET_HOST_NETNS=${host}
  NSNET_STATE_DIR=${w.stateDir}`);
    await this.buildUplinks(host, ext, lan);

    await this.section('host', "the container uses the host's namespace; nsnet records it and claims its ports host-wide", () => this.hostMode());
    const web = await this.section2('bridge', 'a veth to a Linux bridge, NAT, a published port', () => this.bridgeMode());
    await this.section('none', 'a namespace with loopback only', () => this.noneMode());
    await this.section('container', "join another endpoint's namespace (Docker's --network container:ID)", () => this.containerMode(web));
    await this.section('macvlan', "a child of the host's lan0, on the segment itself: no bridge, no NAT", () => this.macvlanMode(lan));
    await this.section('overlay', 'VXLAN across hosts', async () => this.overlayMode());
    await this.section('teardown', 'disconnect and remove through the CLI', () => this.teardown(web));
    await this.section('machine', 'the namespace the demo was started in', () =>
      this.check('machine', 'no nsnet link or nftables table appeared in it', async () => {
        const after = await machineSnapshot();
        const appeared = [...after].filter((x) => !before.has(x));
        expect(!appeared.length, `appeared: ${appeared.join(', ')}`);
        return `${before.size} nsnet-looking objects before and after`;
      }),
    );
    const ok = this.steps.every((s) => s.result !== 'FAILED') && !w.closing;
    return { ok, steps: this.steps };
  }

  /** section() that hands back what fn returned (undefined when the section failed). */
  private async section2<T>(mode: string, title: string, fn: () => Promise<T>): Promise<T | undefined> {
    let out: T | undefined;
    await this.section(mode, title, async () => {
      out = await fn();
    });
    return out;
  }

  /** The host's uplink to the external peer, and lan0 (the macvlan parent) to the lan peer. */
  private async buildUplinks(host: string, ext: string, lan: string): Promise<void> {
    const h = await this.world.netlink(host);
    const x = await this.world.netlink(ext);
    const l = await this.world.netlink(lan);
    await h.links.add({ kind: 'veth', name: 'up0', peer: { name: 'eth0', netns: ext } });
    await h.addresses.add('up0', `${NET.hostUplink}/24`);
    await h.links.set('up0', { up: true });
    await x.addresses.add('eth0', `${NET.external}/24`);
    await x.links.set('eth0', { up: true });
    await h.links.add({ kind: 'veth', name: 'lan0', peer: { name: 'eth0', netns: lan } });
    await h.links.set('lan0', { up: true });
    await l.addresses.add('eth0', `${NET.lanPeer}/24`);
    await l.links.set('eth0', { up: true });
    await serve(this.world, ext, 9000, 'ext');
    await serve(this.world, lan, 9000, 'lan');
  }

  private async hostMode(): Promise<void> {
    await this.check(
      'host',
      'a host-mode endpoint claims its port (8000/tcp)',
      async () => {
        const ep = await this.must<Endpoint>(['connect', 'host', 'hweb', '-p', '8000/tcp']);
        expect(ep.ports[0]?.hostPort === 8000, `claimed ${JSON.stringify(ep.ports)}`);
        return 'in the host-wide port ledger';
      },
      true,
    );
    await serve(this.world, this.host, 8000, 'hweb');
    await this.check('host', "its server in the host namespace answers on the host's own address", async () => {
      const a = await ask(this.world, this.ext, NET.hostUplink, 8000);
      expect(a === `hweb ${NET.external}`, `the external peer heard ${JSON.stringify(a)}`);
      return `${NET.external} → ${NET.hostUplink}:8000 answered "${a}"`;
    });
    await this.check('host', 'a second claim of port 8000 is refused', async () => {
      const r = await this.cli(['connect', 'host', 'hweb2', '-p', '8000/tcp']);
      expect(r.status === 4 && r.doc?.error?.code === 'ERR_PORT_IN_USE', `exit ${r.status}: ${r.stderr}`);
      return `exit 4: ${r.stderr}`;
    });
  }

  private async bridgeMode(): Promise<{ ns: string; ep: Endpoint }> {
    const ns = await this.world.netns('web');
    let ep: Endpoint | undefined;
    await this.check(
      'bridge',
      'create a bridge network and connect a container publishing 8080→80',
      async () => {
        const net = await this.must<Network>(['network', 'create', '--subnet', NET.bridgeSubnet, 'web']);
        ep = await this.must<Endpoint>(['connect', 'web', 'web1', '--netns', ns, '-p', '8080:80']);
        return `${'bridge' in net ? net.bridge : ''}, web1 is ${ep.ipv4} (${ep.mac})`;
      },
      true,
    );
    await serve(this.world, ns, 80, 'web1');
    await this.cli(['port', 'web1'], { human: true });
    const ip = ep!.ipv4!.split('/')[0]!;
    await this.check('bridge', 'the published port answers the external peer', async () => {
      const a = await ask(this.world, this.ext, NET.hostUplink, 8080);
      expect(a === `web1 ${NET.external}`, `the external peer heard ${JSON.stringify(a)}`);
      return `${NET.external} → ${NET.hostUplink}:8080 → ${ip}:80 answered "${a}" (the client's own address kept)`;
    });
    await this.check('bridge', "egress leaves with the host's address (masquerade)", async () => {
      const a = await ask(this.world, ns, NET.external, 9000);
      expect(a === `ext ${NET.hostUplink}`, `the container heard ${JSON.stringify(a)}`);
      return `the external server saw the client as ${a.split(' ')[1]}`;
    });
    await this.check('bridge', 'replies find their way back through conntrack', async () => {
      const ct = this.world.handle(await Conntrack.open({ netns: this.host }));
      const dnat = await ct.list({ protocol: 'tcp', origDstPort: 8080 });
      const snat = await ct.list({ protocol: 'tcp', origSrc: ip, origDstPort: 9000 });
      expect(
        dnat.some((e) => e.reply.src === ip),
        `no DNAT entry for 8080 → ${ip}: ${JSON.stringify(dnat.map((e) => e.reply))}`,
      );
      expect(
        snat.some((e) => e.reply.dst === NET.hostUplink),
        `no SNAT entry for ${ip} → :9000`,
      );
      return `DNAT ${NET.hostUplink}:8080 ↔ ${ip}:80 and SNAT ${ip} ↔ ${NET.hostUplink} in the host's conntrack table`;
    });
    return { ns, ep: ep! };
  }

  private async noneMode(): Promise<void> {
    const ns = await this.world.netns('none');
    await this.check(
      'none',
      'connect a namespace to none',
      async () => {
        await this.must<Endpoint>(['connect', 'none', 'box', '--netns', ns]);
        return '';
      },
      true,
    );
    await this.check('none', 'it has loopback only, up, and reaches nothing else', async () => {
      const c = await this.world.netlink(ns);
      const links = await c.links.list();
      expect(links.length === 1 && links[0]!.name === 'lo' && links[0]!.up, `links: ${links.map((l) => `${l.name}${l.up ? '' : ' (down)'}`).join(', ')}`);
      await serve(this.world, ns, 7000, 'box');
      const self = await ask(this.world, ns, '127.0.0.1', 7000);
      expect(self === 'box 127.0.0.1', `127.0.0.1:7000 answered ${JSON.stringify(self)}`);
      const out = await ask(this.world, ns, NET.external, 9000, 1000);
      expect(out === '', `the external peer answered ${JSON.stringify(out)}`);
      return 'links: lo; 127.0.0.1 answers, the external peer does not';
    });
  }

  private async containerMode(web: { ns: string; ep: Endpoint } | undefined): Promise<void> {
    if (!web) {
      this.skip('container', "join web1's namespace", 'the bridge section failed');
      return;
    }
    let side: Endpoint | undefined;
    await this.check(
      'container',
      'connect side to container:web1',
      async () => {
        side = await this.must<Endpoint>(['connect', 'container:web1', 'side']);
        expect(side.ipv4 === web.ep.ipv4, `side sees ${side.ipv4}, web1 has ${web.ep.ipv4}`);
        return `side shares ${side.netns} and sees web1's ${side.ipv4}`;
      },
      true,
    );
    await this.check('container', "side reaches web1's server over their shared loopback", async () => {
      const a = await ask(this.world, side!.netns!, '127.0.0.1', 80);
      expect(a === 'web1 127.0.0.1', `127.0.0.1:80 answered ${JSON.stringify(a)}`);
      return `127.0.0.1:80 answered "${a}"`;
    });
    await this.check('container', 'web1 cannot leave while side shares its namespace', async () => {
      const r = await this.cli(['disconnect', 'web', 'web1']);
      expect(r.status === 4 && r.doc?.error?.code === 'ERR_ENDPOINT_IN_USE', `exit ${r.status}: ${r.stderr}`);
      return `exit 4: ${r.doc?.error?.code}`;
    });
  }

  private async macvlanMode(lan: string): Promise<void> {
    const ns = await this.world.netns('mv');
    let ip = '';
    await this.check(
      'macvlan',
      'create a macvlan network on lan0 and connect a container',
      async () => {
        await this.must<Network>(['network', 'create', '-d', 'macvlan', '-o', 'parent=lan0', '--subnet', NET.lanSubnet, '--gateway', NET.lanPeer, 'lan']);
        const ep = await this.must<Endpoint>(['connect', 'lan', 'mv1', '--netns', ns]);
        ip = ep.ipv4!.split('/')[0]!;
        return `mv1 is ${ep.ipv4} (${ep.mac}) on the segment`;
      },
      true,
    );
    await serve(this.world, ns, 80, 'mv1');
    await this.check('macvlan', 'the lan peer reaches the container directly at its own address', async () => {
      const a = await ask(this.world, lan, ip, 80);
      expect(a === `mv1 ${NET.lanPeer}`, `the lan peer heard ${JSON.stringify(a)}`);
      return `${NET.lanPeer} → ${ip}:80 answered "${a}"`;
    });
    await this.check('macvlan', 'the container reaches the lan peer with its own address (no NAT)', async () => {
      const a = await ask(this.world, ns, NET.lanPeer, 9000);
      expect(a === `lan ${ip}`, `the container heard ${JSON.stringify(a)}`);
      return `the lan peer saw the client as ${a.split(' ')[1]}`;
    });
  }

  /**
   * Overlay: two "hosts" (namespaces) on an underlay (a veth between them), sharing a control
   * plane (the file one: a directory both see), each with its agent; a container behind each
   * reaches the other across VXLAN. Driven through the library (as a program embedding nsnet
   * does), the calls printed as they are made.
   */
  private async overlayMode(): Promise<void> {
    const hosts = [await this.world.netns('ovh1'), await this.world.netns('ovh2')];
    const cps = path.join(this.world.stateDir, 'overlay-control-plane');
    const n1 = await this.world.netlink(hosts[0]!);
    await n1.links.add({ kind: 'veth', name: 'ul0', peer: { name: 'ul0', netns: hosts[1]! } });
    for (const [i, ns] of hosts.entries()) {
      const nl = i === 0 ? n1 : await this.world.netlink(ns);
      await nl.addresses.add('ul0', `${NET.underlay[i]}/24`);
      await nl.links.set('ul0', { up: true });
    }
    const opened: NetworkHost[] = [];
    const eps: Endpoint[] = [];
    const containers = [await this.world.netns('ovc1'), await this.world.netns('ovc2')];
    await this.check(
      'overlay',
      'two hosts join overlay network ov (VNI 4242) through a shared control plane, each with its agent',
      async () => {
        for (const [i, ns] of hosts.entries()) {
          this.log(`    $ NetworkHost.open({ netns: '${ns}', hostId: 'host${i + 1}', controlPlane: { dir }, underlay: { dev: 'ul0' } })`);
          const h = this.world.handle(
            await NetworkHost.open({
              stateDir: path.join(this.world.stateDir, `overlay-host${i + 1}`),
              netns: ns,
              hostId: `host${i + 1}`,
              controlPlane: { dir: cps },
              underlay: { dev: 'ul0' },
              reconcileInterval: 1000,
            }),
          );
          opened.push(h);
          this.log(`    $ createNetwork({ name: 'ov', driver: 'overlay', subnet: '${NET.overlay}', vni: 4242 }); runAgent()`);
          await h.createNetwork({ name: 'ov', driver: 'overlay', subnet: NET.overlay, vni: 4242 });
          h.runAgent();
        }
        return `host1 and host2 each lease a block of ${NET.overlay}`;
      },
      true,
    );
    await this.check(
      'overlay',
      'a container behind each host',
      async () => {
        for (const [i, ns] of containers.entries()) eps.push(await opened[i]!.connect('ov', { id: `oc${i + 1}`, netns: ns }));
        return eps.map((e, i) => `oc${i + 1} ${e.ipv4} on host${i + 1}`).join(', ');
      },
      true,
    );
    const target = eps[1]!.ipv4!.split('/')[0]!;
    await serve(this.world, containers[1]!, 80, 'oc2');
    await this.check('overlay', 'oc1 on host1 reaches oc2 on host2 across VXLAN (UDP 4789 on the underlay)', async () => {
      // The agents program each other's route, neighbour and FDB entry: wait for them.
      let a = '';
      for (let t = 0; t < 30 && !a; t++) {
        a = await ask(this.world, containers[0]!, target, 80, 1000);
        if (!a) await new Promise((r) => setTimeout(r, 500));
      }
      const from = eps[0]!.ipv4!.split('/')[0]!;
      expect(a === `oc2 ${from}`, `oc2 heard ${JSON.stringify(a)}`);
      return `${from} → ${target}:80 answered "${a}": no NAT between hosts`;
    });
    for (const h of opened) await h.close();
  }

  private async teardown(web: { ns: string; ep: Endpoint } | undefined): Promise<void> {
    if (web) {
      await this.check('teardown', 'disconnecting web1 unpublishes 8080 at once', async () => {
        await this.must(['disconnect', 'container', 'side']);
        await this.must(['disconnect', 'web', 'web1']);
        const a = await ask(this.world, this.ext, NET.hostUplink, 8080, 1000);
        expect(a === '', `8080 still answered ${JSON.stringify(a)}`);
        return 'the external peer gets no answer';
      });
    }
    await this.check('teardown', 'the remaining endpoints and the networks go', async () => {
      for (const [net, id] of [
        ['host', 'hweb'],
        ['none', 'box'],
        ['lan', 'mv1'],
      ] as const) {
        const r = await this.cli(['disconnect', net, id]);
        if (r.status !== 0 && r.status !== 3) throw new Error(r.stderr);
      }
      for (const net of ['web', 'lan']) {
        const r = await this.cli(['network', 'rm', net]);
        if (r.status !== 0 && r.status !== 3) throw new Error(r.stderr);
      }
      const h = await this.world.netlink(this.host);
      const left = (await h.links.list()).filter((l) => l.alias?.startsWith('nsnet:') && l.name !== 'nsnet0');
      expect(!left.length, `still there: ${left.map((l) => l.name).join(', ')}`);
      return 'no bridge or veth of nsnet left in the host namespace';
    });
  }
}

/**
 * What of nsnet's could appear in the namespace the demo was started in: links with nsnet's
 * alias or the demo's uplink names, nftables tables named nsnet*. Read-only.
 */
async function machineSnapshot(): Promise<Set<string>> {
  const out = new Set<string>();
  const nl = await Netlink.open();
  try {
    for (const l of await nl.links.list())
      if (l.alias?.startsWith('nsnet:') || ['up0', 'lan0', 'nsnet0'].includes(l.name) || /^(nsbr|ve)-/u.test(l.name)) out.add(`link ${l.name}`);
  } finally {
    nl.close();
  }
  try {
    const nft = await NfTables.open();
    try {
      for (const t of (await nft.list()).tables) if (t.name.startsWith('nsnet')) out.add(`table ${t.family} ${t.name}`);
    } finally {
      nft.close();
    }
  } catch {
    /* no nf_tables here: nothing of nsnet's either */
  }
  return out;
}

/** The closing table. */
export function reportTable(steps: DemoStep[]): string {
  return table(
    ['mode', 'check', 'result', 'detail'],
    steps.map((s) => [s.mode, s.check, s.result, s.detail.length > 90 ? `${s.detail.slice(0, 87)}...` : s.detail]),
  );
}
