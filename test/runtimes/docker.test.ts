/**
 * Docker 20.10 (containerd, runc, vfs, an imported busybox image) uses `nsnet docker-plugin` as
 * its network driver, with nsnet's IPAM and with Docker's own, in a sandbox of its own per test
 * (test/helpers/docker.ts). Real traffic is the oracle (busybox httpd in the containers,
 * `/cgi-bin/who` answering "<hostname> <client address>"; an external peer behind the host's
 * uplink); after each scenario nothing may be left: no endpoint, lease, port or firewall
 * element in nsnet, no veth or handed-over interface, no endpoint in Docker's networks, no
 * container — and after `network rm`, no nsnet network or bridge.
 */
import * as assert from 'node:assert/strict';
import { useSandbox } from '../helpers/sandbox';
import { skipBecause } from '../helpers/skip';
import { Docker, dockerMissing } from '../helpers/docker';
import { assertNothingLeft, storeDocs, waitFor } from '../helpers/runtime';
import { EXT_IP, HOST_IP } from '../helpers/runtime-sandbox';

const WHO = '/cgi-bin/who';

describe('docker uses nsnet as its network and IPAM driver', function () {
  this.timeout(240000);
  useSandbox();
  const missing = dockerMissing();
  let dk: Docker;

  beforeEach(async function () {
    if (missing) skipBecause(this, missing);
    dk = await Docker.start({ prefix: 'dk' });
  });

  /** What `who` on the container answers at url, from the host or the external peer, once it is up. */
  const reach = (url: string, from: 'host' | 'ext' = 'ext'): Promise<string> => waitFor(() => dk.sandbox.fetch(url, from), `${url} from ${from}`);
  /** nsnet's network records, by name. */
  const nsnetNetworks = (): Record<string, any> => Object.fromEntries(storeDocs(dk.stateDir, 'networks').map((d) => [d.key, d.value]));

  for (const ipam of ['nsnet', 'default'] as const) {
    it(`${ipam} IPAM: run -p answers from outside, containers reach each other and the outside, --ip; rm -f and network rm leave nothing`, async () => {
      const flags = ipam === 'nsnet' ? ['--ipam-driver', 'nsnet', '--subnet', '10.71.0.0/24'] : ['--subnet', '10.71.0.0/24'];
      const id = await dk.network('app', flags);
      const name = id.slice(0, 12);
      const rec = nsnetNetworks()[name];
      assert.ok(rec, `nsnet has the network ${name}: ${Object.keys(nsnetNetworks()).join(' ')}`);
      assert.equal(rec.subnet, '10.71.0.0/24');
      assert.equal(rec.gateway, '10.71.0.1');
      assert.equal(rec.labels['com.docker.network.id'], id);
      assert.equal(rec.labels['com.docker.network.ipam'], ipam);
      assert.ok((await dk.sandbox.links()).includes(rec.bridge), 'the bridge exists');

      await dk.start('web', { networks: ['app'], publish: ['8080:80'] });
      await dk.start('pinned', { networks: ['app'], ip: '10.71.0.50' });
      const ip = await dk.ipOf('web', 'app');
      assert.match(ip, /^10\.71\.0\.\d+$/u);
      assert.equal(await dk.ipOf('pinned', 'app'), '10.71.0.50', '--ip');
      const inside = await dk.exec('web', ['sh', '-c', 'ip -o -4 addr show eth0; ip route']);
      assert.match(
        inside.stdout,
        new RegExp(`inet ${ip.replace(/\./gu, '\\.')}/24`, 'u'),
        `Docker moved the interface in as eth0 with its address: ${JSON.stringify(inside)}`,
      );
      assert.match(inside.stdout, /default via 10\.71\.0\.1 dev eth0/u, 'the gateway nsnet answered in Join');
      assert.equal(await reach(`http://${HOST_IP}:8080${WHO}`), `web ${EXT_IP}`, 'the published port from outside, the client address kept');
      assert.equal(await waitFor(() => dk.fetchFrom('pinned', `http://${ip}${WHO}`), 'pinned → web'), 'web 10.71.0.50', 'container to container');
      assert.equal(await waitFor(() => dk.fetchFrom('pinned', `http://${EXT_IP}${WHO}`), 'egress'), `ext ${HOST_IP}`, 'egress masqueraded');

      const left = await dk.leftovers();
      assert.equal(left.endpoints.length, 2);
      assert.deepEqual(left.leases, [`${name}/10.71.0.50`, `${name}/${ip}`].sort());
      assert.deepEqual(left.ports, ['tcp:8080']);
      assert.equal(left.veths.filter((v) => v.startsWith('ve-')).length, 2);
      assert.deepEqual(await dk.handedOver(), [], 'Docker moved every handed-over interface');
      assert.deepEqual(left.runtimeCache, ['app/pinned', 'app/web']);

      await dk.rm('web', 'pinned');
      await assertNothingLeft(dk, 'after rm -f');
      assert.equal(await dk.sandbox.fetch(`http://${HOST_IP}:8080${WHO}`, 'ext'), '', 'the port is closed');
      await dk.ok(['network', 'rm', 'app']);
      assert.equal(nsnetNetworks()[name], undefined, 'network rm removed the nsnet network');
      assert.equal((await dk.sandbox.links()).includes(rec.bridge), false, 'and its bridge');
      assert.equal(
        storeDocs(dk.stateDir, 'ipam').some((d) => d.key === name),
        false,
        'and its pool',
      );
    });
  }

  it("nsnet IPAM: Docker networks get free subnets clear of nsnet's, and addresses in order", async () => {
    const a = (await dk.network('na', ['--ipam-driver', 'nsnet'])).slice(0, 12);
    const b = (await dk.network('nb', ['--ipam-driver', 'nsnet'])).slice(0, 12);
    const nets = nsnetNetworks();
    assert.notEqual(nets[a].subnet, nets[b].subnet);
    const [sa, sb] = [
      JSON.parse(await dk.ok(['network', 'inspect', '-f', '{{json .IPAM.Config}}', 'na'])),
      JSON.parse(await dk.ok(['network', 'inspect', '-f', '{{json .IPAM.Config}}', 'nb'])),
    ];
    assert.equal(sa[0].Subnet, nets[a].subnet, 'Docker shows the subnet nsnet picked');
    assert.equal(sb[0].Subnet, nets[b].subnet);
    const c = await dk.network('nc', ['--ipam-driver', 'nsnet', '--subnet', nets[a].subnet]).catch((e: Error) => e.message);
    assert.match(String(c), /ERR_SUBNET_OVERLAP/u, "a subnet an nsnet network holds is refused with nsnet's code");
    await dk.start('cx', { networks: ['na'] });
    await dk.start('cy', { networks: ['na'] });
    const gw = nets[a].gateway.split('.').map(Number);
    const ips = [await dk.ipOf('cx', 'na'), await dk.ipOf('cy', 'na')];
    assert.deepEqual(ips, [[...gw.slice(0, 3), gw[3]! + 1].join('.'), [...gw.slice(0, 3), gw[3]! + 2].join('.')]);
    await dk.rm('cx', 'cy');
    await assertNothingLeft(dk, 'after rm');
    await dk.ok(['network', 'rm', 'na', 'nb']);
    assert.deepEqual(
      Object.keys(nsnetNetworks()).filter((n) => n === a || n === b),
      [],
    );
  });

  it('network connect / disconnect on a running container; restart; rm -f leaves nothing', async () => {
    await dk.network('front', ['--ipam-driver', 'nsnet', '--subnet', '10.72.0.0/24']);
    await dk.network('back', ['--subnet', '10.73.0.0/24']);
    await dk.start('web', { networks: ['front'], publish: ['8080:80'] });
    await dk.start('db', { networks: ['back'] });
    await reach(`http://${HOST_IP}:8080${WHO}`);
    await dk.ok(['network', 'connect', 'back', 'web']);
    const backIp = await dk.ipOf('web', 'back');
    const dbIp = await dk.ipOf('db', 'back');
    assert.match(backIp, /^10\.73\.0\.\d+$/u);
    const addrs = await dk.exec('web', ['ip', '-o', '-4', 'addr']);
    assert.match(addrs.stdout, /eth1\s+inet 10\.73\.0\.\d+\/24/u, `the second network is eth1: ${JSON.stringify(addrs)}`);
    assert.equal(await waitFor(() => dk.fetchFrom('db', `http://${backIp}${WHO}`), 'db → web on back'), `web ${dbIp}`);
    assert.equal((await dk.leftovers()).endpoints.length, 3);
    await dk.ok(['network', 'disconnect', 'back', 'web']);
    assert.doesNotMatch((await dk.exec('web', ['ip', '-o', 'link'])).stdout, /eth1/u, 'disconnect took eth1 away');
    let left = await dk.leftovers();
    assert.equal(left.endpoints.length, 2, 'web on front, db on back');
    assert.equal(left.veths.length, 2);
    assert.equal(await reach(`http://${HOST_IP}:8080${WHO}`), `web ${EXT_IP}`, 'the port still answers');

    await dk.ok(['restart', '-t', '0', 'web']);
    assert.equal(await reach(`http://${HOST_IP}:8080${WHO}`), `web ${EXT_IP}`, 'after restart');
    left = await dk.leftovers();
    assert.equal(left.endpoints.length, 2, `one endpoint each: ${left.endpoints.join(' ')}`);
    assert.deepEqual(left.ports, ['tcp:8080']);
    await dk.rm('web', 'db');
    await assertNothingLeft(dk, 'after rm -f');
    await dk.ok(['network', 'rm', 'front', 'back']);
    assert.deepEqual(
      Object.values(nsnetNetworks()).filter((n) => n.labels?.['com.docker.network.id']),
      [],
      'no Docker network left in nsnet',
    );
  });

  it('-p with a host port range, a free port (-p 80) and UDP; an --internal network publishes nothing and has no way out', async () => {
    await dk.network('app', ['--ipam-driver', 'nsnet', '--subnet', '10.74.0.0/24']);
    await dk.network('int', ['--internal', '--subnet', '10.75.0.0/24']);
    const nets = Object.values(nsnetNetworks());
    assert.equal(nets.find((n) => n.subnet === '10.75.0.0/24')?.internal, true, 'the nsnet network is internal');
    await dk.start('ca', { networks: ['app'], publish: ['9000-9002:80', '80', '5353:53/udp'] });
    await dk.start('cb', { networks: ['app'], publish: ['9000-9002:80'] });
    assert.equal(await reach(`http://${HOST_IP}:9000${WHO}`), `ca ${EXT_IP}`, 'ca took the first port of the range');
    assert.equal(await reach(`http://${HOST_IP}:9001${WHO}`), `cb ${EXT_IP}`, 'cb the next one');
    const ports = (await dk.leftovers()).ports;
    assert.ok(ports.includes('udp:5353'), `udp published: ${ports.join(' ')}`);
    assert.equal(ports.filter((p) => /^tcp:(3[2-9]|[4-5]\d|60)\d{3}$/u.test(p)).length, 1, `-p 80 took a free ephemeral port: ${ports.join(' ')}`);
    await dk.start('ci', { networks: ['int'] });
    assert.doesNotMatch((await dk.exec('ci', ['ip', 'route'])).stdout, /default/u, 'no default route on an internal network');
    await dk.rm('ca', 'cb', 'ci');
    await assertNothingLeft(dk, 'after rm');
  });
});
