/**
 * Podman 4.3 and published ports (issue 15, items 1, 2 and 4): what rootful podman does with a
 * container's `-p` that a single `podman run` does not show — it holds each published host port
 * open itself (conmon's reserving socket), it passes the container's port mappings to every
 * attachment's ADD (`--network net1 --network net2`, `podman network connect`), and it asks for
 * the attachments again on `podman network reload`. nsnet-cni connects with
 * `hostPortsHeldByCaller` and `container` (CNI_CONTAINERID), so the ledger shares a port between
 * one container's attachments, the first in connect order receiving it, handed over (with the
 * default route) when that one leaves (lib/state/ledger.ts, lib/state/handover.ts).
 *
 * Real traffic is the oracle (busybox httpd answering "<hostname> <client address>" at
 * `/cgi-bin/who`, an external peer behind the host's uplink); which attachment receives a port
 * is read from the firewall's elements (each names its endpoint); after each scenario nothing
 * may be left. Once as installed (the client starts the daemon itself, or runs the plugin in
 * node when it cannot), once through a daemon started beforehand, with no fallback to node.
 */
import * as assert from 'node:assert/strict';
import { useSandbox } from '../helpers/sandbox';
import { skipBecause } from '../helpers/skip';
import { Podman, podmanMissing } from '../helpers/podman';
import { assertNothingLeft, waitFor } from '../helpers/runtime';
import { EXT_IP, HOST_IP } from '../helpers/runtime-sandbox';

const WHO = '/cgi-bin/who';

for (const daemon of [false, true]) {
  describe(`podman drives nsnet-cni: published ports on reload, connect and several networks (${daemon ? 'through a daemon started beforehand' : 'as installed'})`, function () {
    this.timeout(180000);
    useSandbox();
    const missing = podmanMissing();
    let pm: Podman;

    beforeEach(async function () {
      if (missing) skipBecause(this, missing);
      pm = await Podman.start({ prefix: 'pport', install: 'record', daemon });
      pm.network('net1', { subnet: '10.77.0.0/24' });
      pm.network('net2', { subnet: '10.78.0.0/24' });
    });

    const reach = (url: string, from: 'host' | 'ext' = 'ext'): Promise<string> => waitFor(() => pm.sandbox.fetch(url, from), `${url} from ${from}`);

    // Item 1: the ADD of a reload is not refused for conmon's socket on the port.
    it('network reload of a container with -p keeps it on the network with its port', async () => {
      await pm.start('web', { networks: ['net1'], publish: ['8080:80'] });
      assert.equal(await reach(`http://${HOST_IP}:8080${WHO}`), `web ${EXT_IP}`);
      const id = await pm.idOf('web');
      const before = pm.calls().length;
      const reload = await pm.podman(['network', 'reload', 'web']);
      assert.equal(reload.code, 0, `network reload: ${reload.stderr}`);
      const made = pm
        .calls()
        .slice(before)
        .filter((c) => c.containerId === id)
        .map((c) => `${c.command} ${c.ifname}`);
      assert.deepEqual(
        made.filter((c) => c !== 'CHECK eth0'),
        ['DEL eth0', 'ADD eth0'],
        'the reload took the container off the network and put it back',
      );
      assert.equal(await reach(`http://${HOST_IP}:8080${WHO}`), `web ${EXT_IP}`, 'the port answers after the reload');
      const left = await pm.leftovers();
      assert.equal(left.endpoints.length, 1);
      assert.equal(left.veths.length, 1);
      await pm.rm('web');
      await assertNothingLeft(pm, 'after reload and rm');
    });

    // Items 1 and 2: eth1's ADD carries the container's port mappings; eth0 keeps receiving the port.
    it('network connect NET2 of a container with -p adds eth1; the port still answers; disconnecting NET2 leaves it on eth0', async () => {
      await pm.start('web', { networks: ['net1'], publish: ['8080:80'] });
      assert.equal(await reach(`http://${HOST_IP}:8080${WHO}`), `web ${EXT_IP}`);
      const id = await pm.idOf('web');
      const connect = await pm.podman(['network', 'connect', 'net2', 'web']);
      assert.equal(connect.code, 0, `network connect: ${connect.stderr}`);
      const eth1 = await pm.exec('web', ['ip', '-4', '-o', 'addr', 'show', 'eth1']);
      assert.match(eth1.stdout, /inet 10\.78\.0\.\d+\/24/u, eth1.stderr);
      assert.equal(await reach(`http://${HOST_IP}:8080${WHO}`), `web ${EXT_IP}`, 'the port answers after the connect');
      const connected = await pm.leftovers();
      assert.deepEqual(connected.endpoints, [`${id}:eth0`, `${id}:eth1`]);
      assert.deepEqual(connected.elements, [`${id}:eth0`], 'the first attachment receives the port');
      const disconnect = await pm.podman(['network', 'disconnect', 'net2', 'web']);
      assert.equal(disconnect.code, 0, `network disconnect: ${disconnect.stderr}`);
      assert.equal(await reach(`http://${HOST_IP}:8080${WHO}`), `web ${EXT_IP}`, 'the port answers after the disconnect');
      assert.deepEqual((await pm.leftovers()).endpoints, [`${id}:eth0`]);
      await pm.rm('web');
      await assertNothingLeft(pm, 'after connect, disconnect and rm');
    });

    // The handover: the attachment that receives the port leaves; the second one takes the port and the default route.
    it('network connect NET2, then disconnect NET1: the port answers through eth1, which has the default route', async () => {
      await pm.start('web', { networks: ['net1'], publish: ['8080:80'] });
      assert.equal(await reach(`http://${HOST_IP}:8080${WHO}`), `web ${EXT_IP}`);
      const id = await pm.idOf('web');
      await pm.ok(['network', 'connect', 'net2', 'web']);
      const ip2 = await pm.ipOf('web', 'net2');
      assert.match(ip2, /^10\.78\.0\.\d+$/u);
      const disconnect = await pm.podman(['network', 'disconnect', 'net1', 'web']);
      assert.equal(disconnect.code, 0, `network disconnect: ${disconnect.stderr}`);
      const links = await pm.exec('web', ['ip', '-o', 'link', 'show', 'eth0']);
      assert.notEqual(links.code, 0, `eth0 is gone: ${links.stdout}`);
      const routes = await pm.exec('web', ['ip', 'route']);
      assert.match(routes.stdout, /default via 10\.78\.0\.1 dev eth1/u, 'eth1 took the default route');
      assert.equal(await reach(`http://${HOST_IP}:8080${WHO}`), `web ${EXT_IP}`, 'the port answers through the second attachment, the client address kept');
      assert.match(await reach(`http://${HOST_IP}:8080${WHO}`, 'host'), /^web /u, 'and from the host');
      const left = await pm.leftovers();
      assert.deepEqual(left.endpoints, [`${id}:eth1`]);
      assert.deepEqual(left.leases, [`net2/${ip2}`]);
      assert.deepEqual(left.elements, [`${id}:eth1`], 'eth1 receives the port now');
      assert.equal(left.ports.length, 1, `one port in the ledger: ${left.ports.join(' ')}`);
      assert.equal(left.veths.length, 1);
      await pm.rm('web');
      await assertNothingLeft(pm, 'after connect, disconnect of the first network and rm');
      assert.equal(await pm.sandbox.fetch(`http://${HOST_IP}:8080${WHO}`, 'ext'), '', 'the port is closed');
    });

    // Item 2: the second attachment's ADD shares the port with the first rather than being refused.
    it('one container publishing on two attachments (--network net1 --network net2 -p 8083:80)', async () => {
      await pm.start('web', { networks: ['net1', 'net2'], publish: ['8083:80'] });
      // Podman 4.3 names the interfaces in no fixed order (eth0 may be on net2).
      assert.match(await pm.ipOf('web', 'net1'), /^10\.77\.0\.\d+$/u);
      assert.match(await pm.ipOf('web', 'net2'), /^10\.78\.0\.\d+$/u);
      assert.equal(await reach(`http://${HOST_IP}:8083${WHO}`), `web ${EXT_IP}`);
      assert.match(await reach(`http://${HOST_IP}:8083${WHO}`, 'host'), /^web /u);
      const id = await pm.idOf('web');
      const first = pm.calls().find((c) => c.command === 'ADD' && c.containerId === id);
      const left = await pm.leftovers();
      assert.equal(left.endpoints.length, 2);
      assert.deepEqual(left.elements, [`${id}:${first?.ifname}`], 'the attachment podman added first receives the port');
      await pm.rm('web');
      await assertNothingLeft(pm, 'after rm of a container on two networks with a port');
    });

    // Item 4: loopback from the host reaches a port published on every address (not conmon's socket).
    it('a port published on every address (-p 8080:80) answers at 127.0.0.1:8080 on the host', async () => {
      await pm.start('web', { networks: ['net1'], publish: ['8080:80'] });
      assert.equal(await reach(`http://${HOST_IP}:8080${WHO}`), `web ${EXT_IP}`);
      assert.match(await reach(`http://127.0.0.1:8080${WHO}`, 'host'), /^web /u, 'from the host, on loopback');
      await pm.rm('web');
      await assertNothingLeft(pm, 'after rm');
    });
  });
}
