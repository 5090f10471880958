/**
 * Bridge mode end to end through the NetworkHost façade, with real traffic between namespaces
 * the test made: a "host", an "external" peer linked to it, and containers.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { NetworkHost, NsnetError } from '../../lib/index';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';
import { makeWorld } from '../helpers/world';
import { ipJson, nftJson, sh } from '../helpers/oracle';
import { ask, server } from '../helpers/traffic';

const ruleCount = (ns: string): number => nftJson(ns).nftables.filter((o: any) => o.rule).length;

describe('bridge mode (NetworkHost, real traffic)', function () {
  this.timeout(60000);
  useSandbox();

  let h: string;
  let ext: string;
  let host: NetworkHost;

  beforeEach(async () => {
    ({ h, ext, host } = await makeWorld({ prefix: 'e', hostIp: '10.99.0.1', extIp: '10.99.0.2' }));
  });

  it('publishes a port to the outside, the host and the same network (hairpin); containers talk and egress is masqueraded', async () => {
    await host.createNetwork({ name: 'app', subnet: '172.20.0.0/16' });
    const c1 = await makeNetns('c1');
    const c2 = await makeNetns('c2');
    const e1 = await host.connect('app', {
      id: 'c1',
      netns: c1,
      publish: [
        { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
        { hostPort: 5353, containerPort: 53, protocol: 'udp' },
      ],
    });
    const e2 = await host.connect('app', { id: 'c2', netns: c2 });
    assert.equal(e1.ipv4, '172.20.0.2/16');
    assert.equal(e2.ipv4, '172.20.0.3/16');
    assert.equal(e1.mac, '02:42:ac:14:00:02');
    assert.equal(ipJson(['addr', 'show', 'eth0'], c1)[0].address, e1.mac);
    await server(c1, 80, 'c1');
    await server(c1, 53, 'c1', 'udp');
    await server(ext, 9000, 'ext');
    assert.equal(ask(ext, '10.99.0.1', 8080), 'c1 10.99.0.2', 'external peer -> host:8080 -> c1:80');
    assert.equal(ask(ext, '10.99.0.1', 5353, 'udp'), 'c1 10.99.0.2', 'the same over UDP');
    assert.equal(ask(h, '10.99.0.1', 8080), 'c1 10.99.0.1', 'from the host itself');
    assert.equal(ask(c2, '10.99.0.1', 8080).startsWith('c1 '), true, 'hairpin from the same network');
    assert.equal(ask(c1, '10.99.0.1', 8080).startsWith('c1 '), true, 'hairpin: a container reaches its own published port');
    assert.equal(ask(c2, '172.20.0.2', 80), 'c1 172.20.0.3', 'two containers of one network talk');
    assert.equal(ask(c1, '10.99.0.2', 9000), 'ext 10.99.0.1', 'egress: the peer sees the host address');
    assert.equal(ask(ext, '10.99.0.1', 8081), '', 'an unpublished port answers nothing');
    const inspect = await host.inspectNetwork('app');
    assert.equal(inspect.ipForward, true);
    assert.equal(inspect.endpoints.length, 2);
  });

  it('a port published on one host address answers only there; 127.0.0.1 publishing reaches the container from the host', async () => {
    sh('ip', ['-n', h, 'addr', 'add', '10.99.0.3/24', 'dev', 'up0']);
    await host.createNetwork({ name: 'app', subnet: '172.30.0.0/16' });
    const c = await makeNetns('c');
    await host.connect('app', {
      id: 'c1',
      netns: c,
      publish: [
        { hostIp: '10.99.0.1', hostPort: 8080, containerPort: 80, protocol: 'tcp' },
        { hostIp: '127.0.0.1', hostPort: 8081, containerPort: 80, protocol: 'tcp' },
      ],
    });
    await server(c, 80, 'c1');
    assert.equal(ask(ext, '10.99.0.1', 8080), 'c1 10.99.0.2', 'on the address it was published on');
    assert.equal(ask(ext, '10.99.0.3', 8080), '', 'not on another address of the host');
    assert.equal(ask(h, '127.0.0.1', 8081).startsWith('c1 '), true, 'from the host through 127.0.0.1');
    assert.equal(ask(h, '127.0.0.1', 8080), '', '8080 was not published on loopback');
  });

  it('the default network exists without being created and works on first connect', async () => {
    assert.equal(((await host.listNetworks()).find((n) => n.name === 'bridge') as { bridge?: string } | undefined)?.bridge, 'nsnet0');
    assert.equal(
      ipJson(['link', 'show'], h).some((l: any) => l.ifname === 'nsnet0'),
      false,
      'no bridge before the first connect',
    );
    const c = await makeNetns('d');
    const ep = await host.connect('bridge', { id: 'd1', netns: c });
    assert.equal(ep.ipv4, '172.17.0.2/16');
    assert.equal(ipJson(['-d', 'link', 'show', 'nsnet0'], h)[0].ifalias, 'nsnet:bridge');
    await server(ext, 9000, 'ext');
    assert.equal(ask(c, '10.99.0.2', 9000), 'ext 10.99.0.1');
    await host.disconnect('bridge', 'd1');
  });

  it('disconnect cuts the container off at once; its veth is deleted in a batch; reconnecting right away works', async () => {
    await host.createNetwork({ name: 'app', subnet: '172.31.0.0/16' });
    const c = await makeNetns('c');
    await host.connect('app', { id: 'c1', netns: c, publish: [{ hostPort: 8090, containerPort: 80, protocol: 'tcp' }] });
    await server(c, 80, 'c1');
    assert.equal(ask(ext, '10.99.0.1', 8090), 'c1 10.99.0.2');
    await host.disconnect('app', 'c1');
    assert.equal(ask(ext, '10.99.0.1', 8090), '', 'unreachable as soon as disconnect returns');
    const again = await host.connect('app', { id: 'c1', netns: c, publish: [{ hostPort: 8090, containerPort: 80, protocol: 'tcp' }] });
    assert.equal(again.ifname, 'eth0');
    assert.equal(ask(ext, '10.99.0.1', 8090), 'c1 10.99.0.2', 'reconnected at once');
    await host.disconnect('app', 'c1');
    await host.reap();
    assert.equal(
      ipJson(['link', 'show'], h).some((l: any) => l.ifname.startsWith('ve-')),
      false,
      'retired veths deleted',
    );
    assert.deepEqual(
      ipJson(['link', 'show'], c).map((l: any) => l.ifname),
      ['lo'],
    );
  });

  it('hostPort 0 picks a free port; a dual-stack network gives IPv6 addresses that carry traffic', async () => {
    await host.createNetwork({ name: 'ds', subnet: '172.19.0.0/16', subnet6: 'fd42:19::/64' });
    const c1 = await makeNetns('v');
    const c2 = await makeNetns('v');
    const e1 = await host.connect('ds', { id: 'v1', netns: c1, publish: [{ hostPort: 0, containerPort: 80, protocol: 'tcp' }] });
    const e2 = await host.connect('ds', { id: 'v2', netns: c2, publish: [{ hostPort: 0, containerPort: 80, protocol: 'tcp' }] });
    const p1 = e1.ports[0]!.hostPort;
    const p2 = e2.ports[0]!.hostPort;
    assert.ok(p1 >= 32768 && p1 <= 60999 && p2 >= 32768 && p2 !== p1, `picked ${p1} and ${p2}`);
    await server(c1, 80, 'v1');
    assert.equal(ask(ext, '10.99.0.1', p1), 'v1 10.99.0.2', 'the picked port is published');
    assert.equal(e1.ipv6, 'fd42:19::2/64');
    assert.ok(ipJson(['-6', 'addr', 'show', 'eth0'], c2)[0].addr_info.some((a: any) => a.local === 'fd42:19::3'));
    assert.equal(ask(c2, 'fd42:19::2', 80), 'v1 fd42:19::3', 'IPv6 between containers of the network');
  });

  it('isolates networks, honours icc: false and internal networks', async () => {
    await host.createNetwork({ name: 'a', subnet: '172.21.0.0/16' });
    await host.createNetwork({ name: 'b', subnet: '172.22.0.0/16' });
    await host.createNetwork({ name: 'quiet', subnet: '172.23.0.0/16', icc: false });
    await host.createNetwork({ name: 'inner', subnet: '172.24.0.0/16', internal: true });
    const [a1, b1, q1, q2, i1] = await Promise.all(['a1', 'b1', 'q1', 'q2', 'i1'].map((p) => makeNetns(p)));
    await host.connect('a', { id: 'a1', netns: a1! });
    await host.connect('b', { id: 'b1', netns: b1! });
    await host.connect('quiet', { id: 'q1', netns: q1! });
    await host.connect('quiet', { id: 'q2', netns: q2! });
    await host.connect('inner', { id: 'i1', netns: i1! });
    await server(a1!, 7000, 'a1');
    await server(q1!, 7000, 'q1');
    await server(ext, 9000, 'ext');
    assert.equal(ask(b1!, '172.21.0.2', 7000), '', 'network b cannot reach network a');
    assert.equal(ask(q2!, '172.23.0.2', 7000), '', 'icc: false keeps containers of one network apart');
    assert.equal(ask(i1!, '10.99.0.2', 9000), '', 'an internal network reaches nothing outside');
    assert.equal(ask(a1!, '10.99.0.2', 9000), 'ext 10.99.0.1', 'while a normal one does');
    await assert.rejects(
      host.connect('inner', { id: 'i2', netns: i1!, publish: [{ hostPort: 81, containerPort: 80, protocol: 'tcp' }] }),
      (e: any) => e.code === 'ERR_NETWORK_INTERNAL',
    );
  });

  it('200 containers: unique addresses, traffic on a sample, a constant rule count, nothing left after', async () => {
    await host.createNetwork({ name: 'app', subnet: '172.25.0.0/16' });
    const first = await makeNetns('r0');
    await host.connect('app', { id: 'r0', netns: first, publish: [{ hostPort: 10000, containerPort: 80, protocol: 'tcp' }] });
    const rules = ruleCount(h);
    const ids: string[] = [];
    const spaces = new Map<string, string>([['r0', first]]);
    for (let i = 1; i < 200; i++) {
      const ns = await makeNetns('r');
      await host.connect('app', { id: `r${i}`, netns: ns, publish: [{ hostPort: 10000 + i, containerPort: 80, protocol: 'tcp' }] });
      ids.push(`r${i}`);
      spaces.set(`r${i}`, ns);
    }
    assert.equal(ruleCount(h), rules, 'rules are the same with 1 and 200 endpoints');
    const addrs = (await host.listEndpoints('app')).map((e) => e.ipv4);
    assert.equal(new Set(addrs).size, 200, 'unique addresses');
    for (const i of [0, 57, 123, 199]) {
      await server(spaces.get(`r${i}`)!, 80, `r${i}`);
      assert.equal(ask(ext, '10.99.0.1', 10000 + i), `r${i} 10.99.0.2`, `published port of r${i}`);
    }
    for (const id of ['r0', ...ids]) await host.disconnect('app', id);
    await host.removeNetwork('app');
    assert.deepEqual(
      ipJson(['link', 'show'], h)
        .map((l: any) => l.ifname)
        .sort(),
      ['lo', 'up0'],
    );
    const leftovers = nftJson(h).nftables.filter((o: any) => o.element || (o.set && (o.set.elem ?? []).length) || (o.map && (o.map.elem ?? []).length));
    assert.deepEqual(leftovers, [], 'no element of nsnet remains');
    assert.deepEqual(await host.listEndpoints(), []);
    assert.deepEqual((await host.listNetworks()).map((n) => n.name).sort(), ['bridge', 'container', 'host', 'none'], 'only the predefined networks stay');
  });

  it('refuses bad requests with codes and changes nothing', async () => {
    await host.createNetwork({ name: 'app', subnet: '172.26.0.0/24' });
    const c = await makeNetns('c');
    await host.connect('app', { id: 'c1', netns: c, publish: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] });
    const before = JSON.stringify([await host.listNetworks(), await host.listEndpoints(), ipJson(['link', 'show'], h).map((l: any) => l.ifname)]);
    const c2 = await makeNetns('c');
    const cases: [() => Promise<unknown>, string][] = [
      [() => host.createNetwork({ name: 'app' }), 'ERR_NETWORK_EXISTS'],
      [() => host.createNetwork({ name: 'other', subnet: '172.26.0.0/16' }), 'ERR_SUBNET_OVERLAP'],
      [() => host.createNetwork({ name: 'bad/name' }), 'ERR_INVALID_NAME'],
      [() => host.createNetwork({ name: 'x', subnet: '300.1.1.0/24' }), 'ERR_INVALID_CIDR'],
      [() => host.connect('nope', { id: 'c2', netns: c2 }), 'ERR_NETWORK_NOT_FOUND'],
      [() => host.connect('app', { id: 'c2', netns: 'no-such-ns' }), 'ERR_NETNS_NOT_FOUND'],
      [() => host.connect('app', { id: 'c2', netns: c2, publish: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] }), 'ERR_PORT_IN_USE'],
      [() => host.connect('app', { id: 'c2', netns: c2, ipv4: '172.26.0.2' }), 'ERR_ADDRESS_IN_USE'],
      [() => host.connect('app', { id: 'c2', netns: c2, ipv4: '10.0.0.5' }), 'ERR_ADDRESS_OUTSIDE_SUBNET'],
      [() => host.connect('app', { id: 'c2', netns: c2, publish: [{ hostPort: 70000, containerPort: 80, protocol: 'tcp' }] }), 'ERR_INVALID_PORT'],
      [
        () => host.connect('app', { id: 'c2', netns: c2, publish: [{ hostPort: 90, hostPortEnd: 80, containerPort: 80, protocol: 'tcp' }] }),
        'ERR_INVALID_PORT',
      ],
      [() => host.connect('app', { id: 'c1', netns: c2 }), 'ERR_ENDPOINT_EXISTS'],
      [() => host.connect('app', { id: '../x', netns: c2 }), 'ERR_INVALID_NAME'],
      [() => host.disconnect('app', 'nobody'), 'ERR_ENDPOINT_NOT_FOUND'],
      [() => host.removeNetwork('app'), 'ERR_NETWORK_IN_USE'],
      [() => host.removeNetwork('nope'), 'ERR_NETWORK_NOT_FOUND'],
      [() => host.removeNetwork('bridge'), 'ERR_INVALID_ARGUMENT'],
    ];
    // A process on the host listening on a port: publishing it would steal its traffic.
    const listener = spawn(
      'ip',
      ['netns', 'exec', h, process.execPath, '-e', "require('net').createServer().listen(9999, () => console.log('ready')); setTimeout(() => {}, 20000)"],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    registerCleanup(() => {
      listener.kill();
    });
    await new Promise((r) => listener.stdout!.once('data', r));
    cases.push([() => host.connect('app', { id: 'c2', netns: c2, publish: [{ hostPort: 9999, containerPort: 80, protocol: 'tcp' }] }), 'ERR_PORT_IN_USE']);
    for (const [fn, code] of cases)
      await assert.rejects(fn(), (e: any) => {
        assert.equal(e.code, code, e.message);
        return true;
      });
    assert.equal(JSON.stringify([await host.listNetworks(), await host.listEndpoints(), ipJson(['link', 'show'], h).map((l: any) => l.ifname)]), before);
    const again = await host.connect('app', { id: 'c1', netns: c, publish: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] });
    assert.equal(again.ipv4, '172.26.0.2/24', 'connecting again with the same arguments returns the endpoint');
  });

  it('a container that already has the interface name: ERR_IFNAME_IN_USE naming it and the namespace; nothing changes', async () => {
    await host.createNetwork({ name: 'app', subnet: '172.26.0.0/16' });
    const c = await makeNetns('ifu');
    // The container already has an eth0 (another runtime's, a hand's).
    sh('ip', ['-n', c, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'other0']);
    const links = (): string[] =>
      ipJson(['link', 'show'], h)
        .map((l: any) => l.ifname)
        .sort();
    const elements = (): string => JSON.stringify(nftJson(h).nftables.filter((o: any) => o.set || o.map || o.element));
    await host.connect('app', { id: 'warm', netns: await makeNetns('ifw') }); // the bridge and firewall exist
    const [l0, e0, i0] = [links(), elements(), ipJson(['-d', 'link', 'show', 'eth0'], c)[0]];
    const err = await host.connect('app', { id: 'c1', netns: c, publish: [{ protocol: 'tcp', hostPort: 8090, containerPort: 80 }] }).then(
      () => undefined,
      (x: unknown) => x,
    );
    assert.ok(err instanceof NsnetError, `a coded error, got ${String(err)}`);
    assert.equal(err.code, 'ERR_IFNAME_IN_USE');
    assert.match(err.message, /eth0/u);
    assert.ok(err.message.includes(c), `the message names the namespace: ${err.message}`);
    assert.doesNotMatch(err.message, /ve-/u, 'not the host-side link');
    assert.deepEqual(links(), l0, 'no link made or left in the host');
    assert.equal(elements(), e0, 'no firewall element');
    assert.deepEqual(ipJson(['-d', 'link', 'show', 'eth0'], c)[0], i0, "the container's eth0 untouched");
    assert.deepEqual(
      (await host.listEndpoints('app')).map((e) => e.id),
      ['warm'],
      'no record',
    );
    // Nothing was held: the port and the next address are free for the same container under another name.
    const ep = await host.connect('app', { id: 'c1', netns: c, ifname: 'eth1', publish: [{ protocol: 'tcp', hostPort: 8090, containerPort: 80 }] });
    assert.equal(ep.ipv4, '172.26.0.3/16');
    assert.equal(ep.ifname, 'eth1');
  });

  it('kill -9 at any step of connect, then gc(): nothing is left behind, or (once the record is committed ahead) the whole endpoint', async () => {
    await host.createNetwork({ name: 'app', subnet: '172.28.0.0/16' });
    const c = await makeNetns('k');
    const lib = path.join(__dirname, '..', '..', 'lib', 'index.js');
    const stateDir = host.stateDir;
    const links = () =>
      ipJson(['link', 'show'], h)
        .map((l: any) => l.ifname)
        .sort();
    const elements = () => nftJson(h).nftables.filter((o: any) => o.element || (o.map?.elem ?? []).length || (o.set?.elem ?? []).length).length;
    const before = { links: links(), elements: elements() };
    let wholes = 0;
    for (const point of ['connect:allocated', 'connect:network', 'connect:attached', 'connect:published']) {
      const child = spawnSync(
        process.execPath,
        [
          '-e',
          `
        const { NetworkHost } = require(${JSON.stringify(lib)});
        NetworkHost.open({ stateDir: ${JSON.stringify(stateDir)}, netns: ${JSON.stringify(h)} })
          .then((nh) => nh.connect('app', { id: 'victim', netns: ${JSON.stringify(c)}, publish: [{ hostPort: 8088, containerPort: 80, protocol: 'tcp' }] }))
          .then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });`,
        ],
        { env: { ...process.env, NSNET_FAULT: point }, encoding: 'utf8', timeout: 20000 },
      );
      assert.equal(child.signal, 'SIGKILL', `${point}: the child died there (${child.stderr})`);
      await host.gc();
      const kept = await host.listEndpoints('app');
      if (kept.length > 0) {
        // Killed after its record was durable (StoreTx.commitAhead, lib/attachments.ts): gc made
        // the endpoint whole — never before the kernel work began.
        assert.ok(['connect:attached', 'connect:published'].includes(point), `${point}: a record only once the kernel work began`);
        assert.deepEqual(
          kept.map((e) => e.id),
          ['victim'],
        );
        const eth0 = ipJson(['addr', 'show', 'eth0'], c)[0];
        assert.ok(
          eth0.flags.includes('UP') && eth0.addr_info.some((a: any) => `${a.local}/16` === kept[0]!.ipv4),
          `${point}: the container end is up, addressed`,
        );
        assert.ok(elements() > before.elements, `${point}: its port is published`);
        await host.disconnect('app', 'victim');
        await host.reap();
        wholes++;
      }
      assert.deepEqual(links(), before.links, `${point}: no link left`);
      assert.equal(elements(), before.elements, `${point}: no firewall element left`);
      assert.deepEqual(
        ipJson(['link', 'show'], c).map((l: any) => l.ifname),
        ['lo'],
        `${point}: nothing in the container`,
      );
      assert.deepEqual(await host.listEndpoints('app'), [], `${point}: no record`);
    }
    const ep = await host.connect('app', { id: 'victim', netns: c, publish: [{ hostPort: 8088, containerPort: 80, protocol: 'tcp' }] });
    // The allocator moves on past an address released by a disconnect: with a whole endpoint
    // disconnected above, the next one is further on; the port is free either way.
    assert.equal(ep.ipv4, `172.28.0.${2 + wholes}/16`, 'no lease or port was leaked by the crashes');
  });

  it('gc removes leftovers no record explains; reconcile heals a flushed ruleset', async () => {
    await host.createNetwork({ name: 'app', subnet: '172.27.0.0/16' });
    const c1 = await makeNetns('c1');
    await host.connect('app', { id: 'c1', netns: c1, publish: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] });
    // A crashed connect: a veth marked as nsnet's for an endpoint the store never recorded.
    sh('ip', ['-n', h, 'link', 'add', 've-ghost', 'type', 'veth', 'peer', 'name', 've-ghost-p']);
    sh('ip', ['-n', h, 'link', 'set', 've-ghost', 'alias', 'nsnet:app:ghost']);
    // An endpoint whose namespace went away.
    const gone = await makeNetns('gone');
    await host.connect('app', { id: 'gone', netns: `/var/run/netns/${gone}` });
    sh('ip', ['netns', 'del', gone]);
    const report = await host.gc();
    assert.deepEqual(report.endpoints, ['app/gone']);
    assert.ok(report.links.includes('ve-ghost'));
    assert.equal(
      ipJson(['link', 'show'], h).some((l: any) => l.ifname === 've-ghost'),
      false,
    );
    assert.deepEqual(
      (await host.listEndpoints()).map((e) => e.id),
      ['c1'],
    );

    await server(c1, 80, 'c1');
    assert.equal(ask(ext, '10.99.0.1', 8080), 'c1 10.99.0.2');
    sh('nft', ['flush', 'ruleset'], h);
    assert.equal(ask(ext, '10.99.0.1', 8080), '', 'no DNAT after the flush');
    const healed = await host.reconcile();
    assert.equal(healed.firewallRebuilt, true);
    assert.equal(ask(ext, '10.99.0.1', 8080), 'c1 10.99.0.2', 'reconcile restored the published port');
  });

  it('a container on two networks: both attached, the first network keeps the default route', async () => {
    await host.createNetwork({ name: 'front', subnet: '172.25.1.0/24' });
    await host.createNetwork({ name: 'back', subnet: '172.25.2.0/24' });
    const c = await makeNetns('two');
    const peer = await makeNetns('tp');
    await host.connect('front', { id: 'c1', netns: c });
    const b = await host.connect('back', { id: 'c1', netns: c, ifname: 'eth1' });
    assert.equal(b.ipv4, '172.25.2.2/24');
    assert.deepEqual(
      ipJson(['route', 'show', 'default'], c).map((r: any) => r.gateway),
      ['172.25.1.1'],
    );
    await host.connect('back', { id: 'p1', netns: peer });
    await server(c, 7700, 'c1');
    assert.equal(ask(peer, '172.25.2.2', 7700), 'c1 172.25.2.3', 'reached on the second network');
    await host.disconnect('back', 'c1');
    await host.reap();
    assert.deepEqual(
      ipJson(['link', 'show'], c)
        .map((l: any) => l.ifname)
        .sort(),
      ['eth0', 'lo'],
    );
  });

  it('a long-lived host keeps working when another process or person changes things under it', async () => {
    await host.createNetwork({ name: 'app', subnet: '172.25.3.0/24' });
    const c1 = await makeNetns('ll');
    await host.connect('app', { id: 'c1', netns: c1 });
    await host.disconnect('app', 'c1');
    // Another process removes the network and makes one of the same name with another subnet.
    const other = await NetworkHost.open({ stateDir: host.stateDir, netns: h });
    await other.removeNetwork('app');
    await other.createNetwork({ name: 'app', subnet: '172.25.4.0/24' });
    await other.close();
    const e = await host.connect('app', { id: 'c2', netns: c1 });
    assert.equal(e.ipv4, '172.25.4.2/24');
    assert.ok(
      ipJson(['-4', 'addr', 'show'], h).some((l: any) => l.addr_info.some((a: any) => a.local === '172.25.4.1')),
      'the new bridge has the new gateway',
    );
    await host.disconnect('app', 'c2');
    await host.reap();
    // Someone deletes the bridge by hand: the next connect makes sure of the network again.
    const bridge = ((await host.listNetworks()).find((n) => n.name === 'app') as { bridge: string }).bridge;
    sh('ip', ['-n', h, 'link', 'del', bridge]);
    const c3 = await makeNetns('ll');
    await host.connect('app', { id: 'c3', netns: c3, publish: [{ protocol: 'tcp', hostPort: 8086, containerPort: 80 }] });
    await server(c3, 80, 'c3');
    assert.equal(ask(ext, '10.99.0.1', 8086), 'c3 10.99.0.2', 'published and reachable');
  });
});
