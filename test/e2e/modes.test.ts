/**
 * The modes besides bridge, end to end through NetworkHost: host (the port ledger), none
 * (loopback only), container (a shared namespace) and macvlan (straight onto the parent's L2
 * segment) — with real traffic between namespaces the test made.
 */
import * as assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NetworkHost, NsnetError } from '../../lib/index';
import { rejectsWith } from '../helpers/assert';
import { ipJson, nftJson, sh } from '../helpers/oracle';
import { makeNetns, useSandbox } from '../helpers/sandbox';
import { makeWorld, type World } from '../helpers/world';
import { ask, server, tcpReach } from '../helpers/traffic';

const nsName = (p: string | undefined): string => path.basename(p ?? '');

describe('modes: host, none, container, macvlan (NetworkHost, real traffic)', function () {
  this.timeout(60000);
  useSandbox();

  let h: string;
  let ext: string;
  let stateDir: string;
  let host: NetworkHost;
  let world: World;

  beforeEach(async () => {
    // The host's uplink `lan0`, its other end in the "external" namespace: one L2 segment.
    world = await makeWorld({ prefix: 'm', hostIp: '192.168.77.1', extIp: '192.168.77.254', uplink: 'lan0' });
    ({ h, ext, stateDir, host } = world);
  });

  it('lists host, none and container as predefined networks that cannot be removed or re-created', async () => {
    const nets = await host.listNetworks();
    assert.deepEqual(nets.map((n) => `${n.name}:${n.driver}`).sort(), ['bridge:bridge', 'container:container', 'host:host', 'none:none']);
    await rejectsWith(() => host.removeNetwork('host'), 'ERR_INVALID_ARGUMENT');
    await rejectsWith(() => host.createNetwork({ name: 'none' }), 'ERR_NETWORK_EXISTS');
    await rejectsWith(() => host.createNetwork({ name: 'x', driver: 'host' as 'bridge' }), 'ERR_INVALID_ARGUMENT', /predefined/);
  });

  describe('host', () => {
    it('claims ports in the host-wide ledger: a second claim fails in another process; bridge publishing respects it', async () => {
      const ep = await host.connect('host', { id: 'web', ports: [{ port: 8080 }, { port: 5353, protocol: 'udp' }] });
      assert.equal(ep.driver, 'host');
      assert.equal(ep.netns, undefined, 'a host-mode endpoint has no namespace of its own');
      assert.deepEqual(
        ep.ports.map((p) => `${p.protocol}:${p.hostPort}`),
        ['tcp:8080', 'udp:5353'],
      );

      // Another process, same state dir: the ledger is the store, under its lock. (Run without
      // blocking this process: the store finishes applying a commit in the background.)
      const lib = path.resolve(__dirname, '../../lib/index.js');
      const child = await promisify(execFile)(
        process.execPath,
        [
          '-e',
          `
        const { NetworkHost } = require(${JSON.stringify(lib)});
        (async () => {
          const h = await NetworkHost.open({ stateDir: ${JSON.stringify(stateDir)}, netns: ${JSON.stringify(h)} });
          try { await h.connect('host', { id: 'web2', ports: [{ port: 8080 }] }); console.log('connected'); }
          catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
          await h.close();
        })();`,
        ],
        { encoding: 'utf8', timeout: 20000 },
      );
      assert.ok(child.stdout.trim(), `the other process said nothing: ${child.stderr}`);
      const out = JSON.parse(child.stdout.trim());
      assert.equal(out.code, 'ERR_PORT_IN_USE');
      assert.match(out.message, /endpoint web \(network host\)/, 'the error names the holder');
      // The same port on UDP is another port; the TCP claim is not.
      await host.connect('host', { id: 'dns', ports: [{ port: 8080, protocol: 'udp' }] });

      await host.createNetwork({ name: 'app', subnet: '172.30.0.0/24' });
      const c = await makeNetns('mc');
      await rejectsWith(
        () => host.connect('app', { id: 'c1', netns: c, publish: [{ protocol: 'tcp', hostPort: 8080, containerPort: 80 }] }),
        'ERR_PORT_IN_USE',
        /web/,
      );
      assert.deepEqual(await host.listEndpoints('app'), [], 'the refused connect left nothing');
      assert.deepEqual(
        ipJson(['link', 'show'], c).map((l: any) => l.ifname),
        ['lo'],
      );
      await host.disconnect('host', 'web');
      const c1 = await host.connect('app', { id: 'c1', netns: c, publish: [{ protocol: 'tcp', hostPort: 8080, containerPort: 80 }] });
      assert.equal(c1.ports[0]!.hostPort, 8080, 'released by the host-mode endpoint, published by the bridge one');
      // And the other way round: a host-mode claim of a published port.
      await rejectsWith(() => host.connect('host', { id: 'web', ports: [{ port: 8080 }] }), 'ERR_PORT_IN_USE', /c1 \(network app\)/);
    });

    it('refuses a claim of a port a host process listens on; a host-mode server answers on the host address', async () => {
      await server(h, 7070, 'hostsvc');
      await rejectsWith(() => host.connect('host', { id: 'late', ports: [{ port: 7070 }] }), 'ERR_PORT_IN_USE', /listening socket/);
      // What a host-mode container is: a process in the host namespace, reached on the host's address.
      assert.equal(ask(ext, '192.168.77.1', 7070), 'hostsvc 192.168.77.254');
    });

    it('inspect shows the host interfaces and addresses; options of other modes are refused', async () => {
      const net = await host.inspectNetwork('host');
      const lan = net.interfaces?.find((i) => i.name === 'lan0');
      assert.ok(lan, 'lan0 is listed');
      assert.deepEqual(
        lan.addresses.filter((a) => a.includes('.')),
        ['192.168.77.1/24'],
      );
      assert.equal(lan.up, true);
      const oracle = ipJson(['link', 'show'], h)
        .map((l: any) => l.ifname)
        .sort();
      assert.deepEqual(net.interfaces!.map((i) => i.name).sort(), oracle);
      const c = await makeNetns('mc');
      await rejectsWith(() => host.connect('host', { id: 'x', netns: c }), 'ERR_INVALID_ARGUMENT', /host namespace/);
      await rejectsWith(() => host.connect('host', { id: 'x', publish: [{ protocol: 'tcp', hostPort: 1, containerPort: 1 }] }), 'ERR_INVALID_ARGUMENT');
      await rejectsWith(() => host.connect('host', { id: 'x', ports: [{ port: 0 }] }), 'ERR_INVALID_PORT');
      await rejectsWith(() => host.connect('host', { id: 'x', ports: [{ port: 90, portEnd: 80 }] }), 'ERR_INVALID_PORT', /backwards/);
      assert.deepEqual(await host.listEndpoints('host'), []);
    });
  });

  describe('none', () => {
    it('gives the container loopback only, up; nothing else is reachable', async () => {
      const c = await makeNetns('mn');
      const ep = await host.connect('none', { id: 'lonely', netns: c });
      assert.equal(ep.driver, 'none');
      assert.equal(ep.ipv4, undefined);
      const links = ipJson(['link', 'show'], c);
      assert.deepEqual(
        links.map((l: any) => l.ifname),
        ['lo'],
      );
      assert.ok(links[0].flags.includes('UP'), 'lo is up');
      assert.ok(await tcpReach(c, c, '127.0.0.1', 7001), 'loopback works inside');
      assert.equal(await tcpReach(ext, c, '192.168.77.254', 7002, 800), false, 'nothing outside is reachable');
      assert.deepEqual(ipJson(['route', 'show'], c), [], 'no routes');
      await host.disconnect('none', 'lonely');
      assert.deepEqual(await host.listEndpoints('none'), []);
      await rejectsWith(() => host.connect('none', { id: 'x' }), 'ERR_INVALID_ARGUMENT', /netns/);
    });
  });

  describe('container', () => {
    it("joins a connected endpoint's namespace: same addresses, its 127.0.0.1 services; the target stays while shared", async () => {
      await host.createNetwork({ name: 'app', subnet: '172.31.5.0/24' });
      const c = await makeNetns('mt');
      const c1 = await host.connect('app', { id: 'c1', netns: c });
      const c2 = await host.connect('container', { id: 'c2', target: 'c1' });
      assert.equal(c2.driver, 'container');
      assert.equal(c2.target, 'c1');
      assert.equal(c2.netns, c1.netns, 'the same namespace');
      assert.equal(c2.ipv4, c1.ipv4, 'the same address');
      assert.equal(c2.mac, c1.mac);
      // A server c1 runs on 127.0.0.1, reached from the namespace c2 was given.
      await server(c, 7100, 'c1-local');
      const r = spawnSync(
        'ip',
        [
          'netns',
          'exec',
          nsName(c2.netns),
          process.execPath,
          '-e',
          `
        const s = require('net').connect(7100, '127.0.0.1'); let d = ''; s.on('data', (x) => d += x); s.on('end', () => { process.stdout.write(d); process.exit(0); });
        s.on('error', () => process.exit(1)); setTimeout(() => process.exit(2), 2000);`,
        ],
        { encoding: 'utf8' },
      );
      assert.match(r.stdout, /^c1-local 127\.0\.0\.1/);
      // A sharer of a sharer joins the same (root) namespace.
      const c3 = await host.connect('container', { id: 'c3', target: 'c2' });
      assert.equal(c3.target, 'c1');
      assert.equal(c3.netns, c1.netns);
      // Idempotent with the same arguments; refused with others.
      assert.deepEqual(await host.connect('container', { id: 'c2', target: 'c1' }), c2);

      await rejectsWith(() => host.disconnect('app', 'c1'), 'ERR_ENDPOINT_IN_USE', /c2, c3/);
      assert.equal((await host.listEndpoints('app')).length, 1, 'c1 is still connected');
      assert.ok(
        ipJson(['link', 'show'], c).some((l: any) => l.ifname === 'eth0'),
        'its interface is still there',
      );
      await host.disconnect('container', 'c2');
      await rejectsWith(() => host.disconnect('app', 'c1'), 'ERR_ENDPOINT_IN_USE', /c3/);
      // A store an earlier version wrote has no flag saying that namespaces are shared: the
      // next NetworkHost to open it sets it, and the disconnect is still refused.
      const flag = path.join(stateDir, 'flags', 'shared-namespaces.json');
      assert.ok(fs.existsSync(flag), 'a container-mode connect flags the store');
      fs.rmSync(flag);
      await host.close();
      host = world.host = await NetworkHost.open({ stateDir, netns: h });
      assert.ok(fs.existsSync(flag), 'flagged again at open');
      await rejectsWith(() => host.disconnect('app', 'c1'), 'ERR_ENDPOINT_IN_USE', /c3/);
      await host.disconnect('container', 'c3');
      await host.disconnect('app', 'c1');
      assert.deepEqual(await host.listEndpoints(), []);
    });

    it('refuses unknown targets, host-mode targets and options of other modes', async () => {
      await rejectsWith(() => host.connect('container', { id: 'x', target: 'ghost' }), 'ERR_ENDPOINT_NOT_FOUND');
      await host.connect('host', { id: 'hm' });
      await rejectsWith(() => host.connect('container', { id: 'x', target: 'hm' }), 'ERR_INVALID_ARGUMENT', /host network/);
      await rejectsWith(() => host.connect('container', { id: 'x' }), 'ERR_INVALID_ARGUMENT', /target/);
      const c = await makeNetns('mt');
      await rejectsWith(() => host.connect('container', { id: 'x', target: 'hm', netns: c }), 'ERR_INVALID_ARGUMENT', /netns/);
      assert.deepEqual(
        (await host.listEndpoints()).map((e) => e.id),
        ['hm'],
      );
    });

    it('gc drops sharers whose namespace is gone', async () => {
      const c = await makeNetns('mt');
      await host.connect('none', { id: 'base', netns: c });
      await host.connect('container', { id: 'side', target: 'base' });
      sh('ip', ['netns', 'del', c]);
      const report = await host.gc();
      assert.deepEqual(report.endpoints.sort(), ['container/side', 'none/base']);
      assert.deepEqual(await host.listEndpoints(), []);
    });
  });

  describe('macvlan', () => {
    const subnet = '192.168.77.0/24';

    it("puts containers on the parent's segment: the external peer reaches them directly, they reach each other, no NAT", async () => {
      const rulesBefore = nftJson(h).nftables.filter((o: any) => o.rule).length;
      const net = await host.createNetwork({ name: 'lan', driver: 'macvlan', parent: 'lan0', subnet, gateway: '192.168.77.254', ipRange: '192.168.77.128/25' });
      assert.equal(net.driver, 'macvlan');
      const c1 = await makeNetns('mm');
      const c2 = await makeNetns('mm');
      const e1 = await host.connect('lan', { id: 'm1', netns: c1 });
      const e2 = await host.connect('lan', { id: 'm2', netns: c2 });
      assert.equal(e1.ipv4, '192.168.77.128/24');
      assert.equal(e2.ipv4, '192.168.77.129/24');
      const eth0 = ipJson(['-d', 'addr', 'show', 'eth0'], c1)[0];
      assert.equal(eth0.linkinfo.info_kind, 'macvlan');
      assert.equal(eth0.linkinfo.info_data.mode, 'bridge');
      assert.equal(eth0.address, e1.mac);
      assert.equal(eth0.ifalias, 'nsnet:lan:m1');
      assert.deepEqual(
        ipJson(['route', 'show', 'default'], c1).map((r: any) => r.gateway),
        ['192.168.77.254'],
      );
      assert.deepEqual(
        ipJson(['link', 'show'], h)
          .map((l: any) => l.ifname)
          .sort(),
        ['lan0', 'lo'],
        'nothing new in the host namespace',
      );

      assert.ok(await tcpReach(c1, ext, '192.168.77.128', 7201), 'the external peer reaches m1 at its own address');
      await server(ext, 7202, 'ext');
      assert.equal(ask(c2, '192.168.77.254', 7202), 'ext 192.168.77.129', "the peer sees the container's own address: no NAT");
      assert.ok(await tcpReach(c2, c1, '192.168.77.129', 7203), 'm1 reaches m2 (macvlan bridge mode)');
      assert.equal(nftJson(h).nftables.filter((o: any) => o.rule).length, rulesBefore, 'no firewall rules for macvlan');

      const inspect = await host.inspectNetwork('lan');
      assert.equal(inspect.parentUp, true);
      assert.deepEqual(inspect.endpoints.map((e) => e.id).sort(), ['m1', 'm2']);

      await host.disconnect('lan', 'm1');
      assert.deepEqual(
        ipJson(['link', 'show'], c1).map((l: any) => l.ifname),
        ['lo'],
        'disconnect removes the child',
      );
      assert.equal(await tcpReach(c1, ext, '192.168.77.128', 7204, 800), false);
      const again = await host.connect('lan', { id: 'm3', netns: c1, ipv4: '192.168.77.128' });
      assert.equal(again.ipv4, '192.168.77.128/24', 'the address was released');
    });

    it('private mode: children of one parent cannot reach each other, the outside reaches both', async () => {
      await host.createNetwork({
        name: 'priv',
        driver: 'macvlan',
        parent: 'lan0',
        mode: 'private',
        subnet,
        gateway: '192.168.77.254',
        ipRange: '192.168.77.64/27',
      });
      const c1 = await makeNetns('mp');
      const c2 = await makeNetns('mp');
      await host.connect('priv', { id: 'p1', netns: c1 });
      await host.connect('priv', { id: 'p2', netns: c2 });
      assert.equal(ipJson(['-d', 'link', 'show', 'eth0'], c1)[0].linkinfo.info_data.mode, 'private');
      assert.ok(await tcpReach(c1, ext, '192.168.77.64', 7301));
      assert.ok(await tcpReach(c2, ext, '192.168.77.65', 7302));
      assert.equal(await tcpReach(c2, c1, '192.168.77.65', 7303, 800), false, 'private: no traffic between siblings');
    });

    it('refuses bad configs and connects with a coded error, changing nothing', async () => {
      await rejectsWith(() => host.createNetwork({ name: 'bad', driver: 'macvlan', parent: 'nope0', subnet }), 'ERR_PARENT_NOT_FOUND');
      await rejectsWith(() => host.createNetwork({ name: 'bad', driver: 'macvlan', subnet }), 'ERR_INVALID_ARGUMENT', /parent/);
      await rejectsWith(
        () => host.createNetwork({ name: 'bad', driver: 'macvlan', parent: 'lan0', mode: 'loud' as 'bridge', subnet }),
        'ERR_INVALID_ARGUMENT',
        /mode/,
      );
      await rejectsWith(() => host.createNetwork({ name: 'bad', driver: 'macvlan', parent: 'lan0', subnet, mtu: 9000 }), 'ERR_INVALID_MTU');
      await rejectsWith(() => host.createNetwork({ name: 'bad', parent: 'lan0', subnet }), 'ERR_INVALID_ARGUMENT', /bridge network/);
      assert.equal(
        (await host.listNetworks()).some((n) => n.name === 'bad'),
        false,
      );

      await host.createNetwork({
        name: 'pt',
        driver: 'macvlan',
        parent: 'lan0',
        mode: 'passthru',
        subnet,
        gateway: '192.168.77.254',
        ipRange: '192.168.77.32/28',
      });
      const c1 = await makeNetns('mq');
      const c2 = await makeNetns('mq');
      await rejectsWith(
        () => host.connect('pt', { id: 'q1', netns: c1, publish: [{ protocol: 'tcp', hostPort: 80, containerPort: 80 }] }),
        'ERR_INVALID_ARGUMENT',
        /no NAT/,
      );
      await host.connect('pt', { id: 'q1', netns: c1 });
      // passthru: the parent has one child at most. The kernel's refusal arrives coded.
      const err = await host.connect('pt', { id: 'q2', netns: c2 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof NsnetError, `a coded error, got ${String(err)}`);
      assert.match(err.code, /^E[A-Z]+$/);
      assert.deepEqual(
        ipJson(['link', 'show'], c2).map((l: any) => l.ifname),
        ['lo'],
        'nothing left in the second container',
      );
      assert.deepEqual(
        (await host.listEndpoints('pt')).map((e) => e.id),
        ['q1'],
        'no record, no lease',
      );
      await host.disconnect('pt', 'q1');
      await host.connect('pt', { id: 'q2', netns: c2 });
      // A container that already has the interface name: refused before anything is made.
      await host.disconnect('pt', 'q2');
      const c3 = await makeNetns('mq');
      sh('ip', ['-n', c3, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'other0']);
      const e3 = await host.connect('pt', { id: 'q3', netns: c3 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(e3 instanceof NsnetError && e3.code === 'ERR_IFNAME_IN_USE', `ERR_IFNAME_IN_USE, got ${String(e3)}`);
      assert.ok(e3.message.includes('eth0') && e3.message.includes(c3), e3.message);
      assert.equal(ipJson(['-d', 'link', 'show', 'eth0'], c3)[0].linkinfo.info_kind, 'veth', "the container's eth0 untouched");
      assert.deepEqual(
        (await host.listEndpoints('pt')).map((e) => e.id),
        [],
        'no record, no lease',
      );
      await host.connect('pt', { id: 'q3', netns: c3, ifname: 'eth1' });
      assert.equal(ipJson(['-d', 'link', 'show', 'eth1'], c3)[0].linkinfo.info_kind, 'macvlan');
    });

    it('reconcile re-creates a child someone deleted; gc forgets endpoints whose namespace is gone', async () => {
      await host.createNetwork({ name: 'lan', driver: 'macvlan', parent: 'lan0', subnet, gateway: '192.168.77.254', ipRange: '192.168.77.128/25' });
      const c1 = await makeNetns('mr');
      const c2 = await makeNetns('mr');
      await host.connect('lan', { id: 'r1', netns: c1 });
      await host.connect('lan', { id: 'r2', netns: c2 });
      sh('ip', ['-n', c1, 'link', 'del', 'eth0']);
      const rep = await host.reconcile();
      assert.deepEqual(rep.endpoints, ['lan/r1']);
      assert.ok(await tcpReach(c1, ext, '192.168.77.128', 7401), 'reachable again');
      sh('ip', ['netns', 'del', c2]);
      const gc = await host.gc();
      assert.deepEqual(gc.endpoints, ['lan/r2']);
      const c3 = await makeNetns('mr');
      assert.equal((await host.connect('lan', { id: 'r3', netns: c3, ipv4: '192.168.77.129' })).ipv4, '192.168.77.129/24', "r2's address is free again");
    });
  });
});
