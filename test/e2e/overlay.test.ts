/**
 * Overlay mode end to end: three host namespaces on a "wire" bridge, one agent process per host
 * (inside its namespace, as in production), containers behind each host, real TCP between
 * them; etcd (started here, in the wire namespace) or a shared directory as the control plane.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { OverlayDevices } from '../../lib/overlay/devices';
import { EtcdControlPlane } from '../../lib/overlay/etcd';
import { useSandbox, registerCleanup } from '../helpers/sandbox';
import { ipJson, sh } from '../helpers/oracle';
import { tcpReach } from '../helpers/traffic';
import { AgentProcess, EtcdServer, container, countVxlan, hostIp, makeWorld, peerState, udpDf, udpSizes, until, type World } from '../helpers/overlay';

const TTL = 3;
const INTERVAL = 1000;
const UNDERLAY_MTU = 1400;

/** The n-th address of a host block ("10.88.3.0/24", 2 → "10.88.3.2"). */
const addrIn = (subnet: string, n: number): string => {
  const p = subnet.split('/')[0]!.split('.').map(Number);
  return `${p[0]}.${p[1]}.${p[2]}.${p[3]! + n}`;
};

function scenario(kind: 'etcd' | 'files'): void {
  describe(`overlay mode, ${kind} control plane (agent processes, real traffic)`, function () {
    this.timeout(120000);
    useSandbox();

    const port = kind === 'etcd' ? 4789 : 8472;
    let world: World;
    let etcd: EtcdServer | undefined;
    let dir: string;
    const agents: AgentProcess[] = [];
    const devs: OverlayDevices[] = [];
    const cs: string[] = [];
    const ips: string[] = [];
    let vxlanPackets: () => number;

    const args = (i: number): Record<string, unknown> => ({
      hostId: `host${i + 1}`,
      ...(kind === 'etcd' ? { etcd: [etcd!.url] } : { dir, pollInterval: 200 }),
      ttl: TTL,
      underlay: i === 1 ? { address: hostIp(i) } : { dev: 'eth0' },
      define: [{ name: 'ov', subnet: '10.88.0.0/16', vni: 4242, vxlanPort: port }],
      join: ['ov'],
      reconcileInterval: INTERVAL,
    });
    /** The 'error' events an agent printed since it (re)started. */
    const errorsOf = (i: number): unknown[] => agents[i]!.lines.filter((l) => l.event === 'error');
    const routesTo = (h: number, subnet: string): boolean => peerState(world.hosts[h]!, devs[h]!.vxlan).routes.some((r) => r.startsWith(`${subnet} `));

    before(async () => {
      world = await makeWorld(3, { mtu: UNDERLAY_MTU, local: kind === 'etcd' });
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-ovcp-'));
      registerCleanup(() => fs.rmSync(dir, { recursive: true, force: true }), 'control plane dir');
      if (kind === 'etcd') {
        etcd = new EtcdServer(world.wire);
        await etcd.start();
      }
      vxlanPackets = countVxlan(world.wire, port);
      for (let i = 0; i < 3; i++) agents.push(new AgentProcess(world.hosts[i]!, args(i)));
      for (let i = 0; i < 3; i++) devs.push((await agents[i]!.ready())[0]!);
      for (let i = 0; i < 3; i++) {
        ips.push(addrIn(devs[i]!.subnet, 2));
        cs.push(await container(world.hosts[i]!, devs[i]!, `c${i + 1}`, ips[i]!));
      }
    });

    it('gives each host its own block, a bridge and a VXLAN device with the MTU of the underlay minus 50', () => {
      assert.equal(new Set(devs.map((d) => d.subnet)).size, 3);
      for (let i = 0; i < 3; i++) {
        const d = devs[i]!;
        assert.match(d.subnet, /^10\.88\.\d+\.0\/24$/u);
        assert.equal(d.mtu, UNDERLAY_MTU - 50);
        const [vx] = ipJson(['-d', 'link', 'show', d.vxlan], world.hosts[i]);
        assert.equal(vx.mtu, UNDERLAY_MTU - 50);
        assert.equal(vx.address, d.vtepMac);
        assert.equal(vx.linkinfo.info_data.id, 4242);
        assert.equal(vx.linkinfo.info_data.port, port);
        assert.equal(vx.linkinfo.info_data.local, hostIp(i));
        assert.equal(vx.linkinfo.info_data.learning, false);
        assert.equal(vx.ifalias, 'nsnet:ov');
        const addrs = ipJson(['addr', 'show', d.vxlan], world.hosts[i])[0].addr_info.map(
          (a: { local: string; prefixlen: number }) => `${a.local}/${a.prefixlen}`,
        );
        assert.deepEqual(addrs, [`${d.vtepAddress}/32`]);
        const [br] = ipJson(['-4', 'addr', 'show', d.bridge], world.hosts[i]);
        assert.equal(br.mtu, UNDERLAY_MTU - 50);
        assert.deepEqual(
          br.addr_info.map((a: { local: string }) => a.local),
          [d.gateway],
        );
        assert.equal(ipJson(['link', 'show', 'eth0'], cs[i])[0].mtu, UNDERLAY_MTU - 50);
      }
    });

    it('programs one route, one permanent neighbour and one permanent FDB entry per remote host', async () => {
      for (let i = 0; i < 3; i++) {
        const want = [0, 1, 2].filter((j) => j !== i);
        const s = (await until(`h${i + 1} peers`, () => {
          const p = peerState(world.hosts[i]!, devs[i]!.vxlan);
          return p.routes.length === 2 && p.fdb.length === 2 ? p : undefined;
        }))!;
        assert.deepEqual(s.routes.sort(), want.map((j) => `${devs[j]!.subnet} via ${devs[j]!.vtepAddress} onlink proto 110`).sort());
        assert.deepEqual(s.neighs.sort(), want.map((j) => `${devs[j]!.vtepAddress} ${devs[j]!.vtepMac} PERMANENT`).sort());
        assert.deepEqual(s.fdb.sort(), want.map((j) => `${devs[j]!.vtepMac} dst ${hostIp(j)} permanent`).sort());
      }
    });

    it('carries TCP between containers on different hosts, both ways, as VXLAN on the configured port', async () => {
      const before = vxlanPackets();
      for (const [a, b] of [
        [0, 1],
        [1, 0],
        [1, 2],
        [2, 1],
        [0, 2],
        [2, 0],
      ] as const)
        assert.ok(await tcpReach(cs[b]!, cs[a]!, ips[b]!), `c${a + 1}@h${a + 1} -> c${b + 1}@h${b + 1} (${ips[b]})`);
      assert.ok(vxlanPackets() - before >= 6 * 3, `VXLAN packets on UDP ${port} counted on the wire: ${vxlanPackets() - before}`);
    });

    it('passes a full overlay-MTU datagram with DF between hosts; one byte more does not leave the container', async () => {
      const mtu = UNDERLAY_MTU - 50;
      const rx = await udpSizes(cs[1]!, 7000);
      assert.equal(udpDf(cs[0]!, ips[1]!, 7000, mtu - 28), 'sent');
      await until('the full-size datagram at c2', () => rx.sizes.includes(mtu - 28), 5000);
      assert.equal(udpDf(cs[0]!, ips[1]!, 7000, mtu - 27), 'EMSGSIZE');
      rx.stop();
    });

    it("withdraws a dead host's route, neighbour and FDB entry everywhere within TTL + reconcile interval, and restores them when it returns", async () => {
      const t0 = Date.now();
      await agents[2]!.kill('SIGKILL'); // no revoke: the lease must expire
      for (const h of [0, 1]) await until(`h${h + 1} withdraws h3`, () => !routesTo(h, devs[2]!.subnet), (TTL + 6) * 1000);
      const took = Date.now() - t0;
      assert.ok(took <= TTL * 1000 + INTERVAL + 1500, `withdrawn after ${took} ms`);
      for (const h of [0, 1]) {
        const s = peerState(world.hosts[h]!, devs[h]!.vxlan);
        assert.ok(!s.neighs.some((n) => n.startsWith(`${devs[2]!.vtepAddress} `)), 'neighbour withdrawn');
        assert.ok(!s.fdb.some((f) => f.startsWith(devs[2]!.vtepMac)), 'FDB entry withdrawn');
        assert.equal(s.routes.length, 1);
      }
      assert.equal(await tcpReach(cs[2]!, cs[0]!, ips[2]!, 5555, 1000), false, 'c1 cannot reach c3 while h3 is gone');
      agents[2]!.restart();
      const again = (await agents[2]!.ready())[0]!;
      assert.equal(again.subnet, devs[2]!.subnet, 'h3 keeps its block (its containers keep their addresses)');
      for (const h of [0, 1]) await until(`h${h + 1} re-adds h3`, () => routesTo(h, devs[2]!.subnet), 10000);
      assert.ok(await tcpReach(cs[2]!, cs[0]!, ips[2]!), 'c1 -> c3 again');
      // A host dying, its lease expiring and the host coming back are ordinary operation.
      for (const i of [0, 1, 2]) assert.deepEqual(errorsOf(i), [], `agent of h${i + 1}`);
    });

    if (kind === 'etcd') {
      it('survives an etcd restart: traffic flows meanwhile, agents reconnect and apply changes made after it', async () => {
        const marks = agents.map((a) => a.lines.length);
        await etcd!.stop();
        await Promise.all(agents.map((a, i) => a.waitFor((l) => l.event === 'resync' || l.event === 'error', 'notices etcd is gone', 15000, marks[i])));
        assert.ok(await tcpReach(cs[1]!, cs[0]!, ips[1]!), 'the data plane does not need the control plane');
        await etcd!.start();
        // A change after the restart reaches every agent: a new host appears, then leaves cleanly.
        const ghost = await EtcdControlPlane.open({ endpoints: [etcd!.url], hostId: 'ghost', ttl: TTL });
        const g = await ghost.join('ov', { underlay: '198.18.0.99', vtepMac: '02:00:00:00:00:99' });
        for (let h = 0; h < 3; h++) await until(`h${h + 1} adds the new host`, () => routesTo(h, g.subnet), 15000);
        await ghost.close();
        for (let h = 0; h < 3; h++) await until(`h${h + 1} drops the new host`, () => !routesTo(h, g.subnet), 5000);
      });

      it('applies a change made while an agent was cut off from etcd once it reconnects; a clean leave releases the block at once', async () => {
        const [h1, , h3] = world.hosts as [string, string, string];
        sh('nft', ['-f', '-'], h3, {
          input:
            'table inet cut {\n chain o {\n  type filter hook output priority 0;\n  tcp dport 2379 reject with tcp reset\n }\n chain i {\n  type filter hook input priority 0;\n  tcp sport 2379 drop\n }\n}\n',
        });
        registerCleanup(() => spawnSync('ip', ['netns', 'exec', h3, 'nft', 'delete', 'table', 'inet', 'cut']), 'uncut');
        const mark = agents[2]!.lines.length;
        await agents[1]!.kill('SIGTERM'); // a clean leave: the lease is revoked
        await until('h1 withdraws h2 at once', () => !routesTo(0, devs[1]!.subnet), 2500);
        const view = await EtcdControlPlane.open({ endpoints: [etcd!.url], hostId: 'observer' });
        try {
          assert.ok(!(await view.snapshot()).hosts.some((r) => r.hostId === 'host2'), 'host2 released its block');
        } finally {
          await view.close();
        }
        assert.ok(routesTo(2, devs[1]!.subnet), 'h3, cut off, has not heard of it');
        await agents[2]!.waitFor((l) => l.event === 'resync' || l.event === 'error', 'notices the cut', 15000, mark);
        sh('nft', ['delete', 'table', 'inet', 'cut'], h3);
        await until('h3 withdraws h2 after reconnecting', () => !routesTo(2, devs[1]!.subnet), 15000);
        await until('h1 has h3', () => routesTo(0, devs[2]!.subnet), 15000);
        assert.ok(await tcpReach(cs[2]!, cs[0]!, ips[2]!), 'c1 -> c3');
        void h1;
      });
    } else {
      it('a host that leaves cleanly releases its block at once', async () => {
        await agents[1]!.kill('SIGTERM');
        for (const h of [0, 2]) await until(`h${h + 1} withdraws h2`, () => !routesTo(h, devs[1]!.subnet), 1500);
        const files = fs.readdirSync(path.join(dir, 'subnets')).map(decodeURIComponent);
        assert.ok(!files.some((f) => f.includes(devs[1]!.subnet.replace('/', '-'))), `h2's block is free: ${files.join(' ')}`);
        assert.ok(await tcpReach(cs[2]!, cs[0]!, ips[2]!), 'c1 -> c3 still');
        for (const i of [0, 2]) assert.deepEqual(errorsOf(i), [], `agent of h${i + 1}`);
      });
    }
  });
}

scenario('etcd');
scenario('files');
