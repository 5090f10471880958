/**
 * Podman 4.3 (CNI backend, crun, vfs, a busybox rootfs) drives nsnet-cni the way a user runs
 * it, in a sandbox of its own per test (test/helpers/runtime-sandbox.ts): what already worked
 * when nsnet was first tried with podman, kept working. Real traffic is the oracle (busybox
 * httpd in the containers, `/cgi-bin/who` answering "<hostname> <client address>"; an external
 * peer behind the host's uplink), and after each scenario nothing may be left: no endpoint,
 * lease, port or firewall element in nsnet, no veth, no namespace, no entry in libcni's cache,
 * no container. Once without the nsnet-cni daemon (the client runs the plugin in node: what a
 * fresh install does) and once with it started in the sandbox.
 */
import * as assert from 'node:assert/strict';
import { useSandbox } from '../helpers/sandbox';
import { skipBecause } from '../helpers/skip';
import { Podman, podmanMissing } from '../helpers/podman';
import { assertNothingLeft, waitFor } from '../helpers/runtime';
import { EXT_IP, HOST_IP } from '../helpers/runtime-sandbox';

const WHO = '/cgi-bin/who';

for (const daemon of [false, true]) {
  describe(`podman drives nsnet-cni: what works (${daemon ? 'through the daemon' : 'no daemon'})`, function () {
    this.timeout(180000);
    useSandbox();
    const missing = podmanMissing();
    let pm: Podman;

    beforeEach(async function () {
      if (missing) skipBecause(this, missing);
      pm = await Podman.start({ prefix: 'pm', daemon });
      pm.network('net1', { subnet: '10.77.0.0/24' });
    });

    /** What `who` on the container answers at url, from the host or the external peer, once it is up. */
    const reach = (url: string, from: 'host' | 'ext' = 'ext'): Promise<string> => waitFor(() => pm.sandbox.fetch(url, from), `${url} from ${from}`);

    it('run --rm: the container has its address and default route; nothing is left when it exits', async () => {
      const r = await pm.run('once', { networks: ['net1'], detach: false, cmd: ['/bin/sh', '-c', 'ip -4 -o addr show eth0; ip route'] });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /inet 10\.77\.0\.\d+\/24/u);
      assert.match(r.stdout, /default via 10\.77\.0\.1 dev eth0/u);
      await assertNothingLeft(pm, 'after run --rm');
    });

    it('run -d -p: published ports answer from outside (any address) and from the host (127.0.0.1:PORT published on 127.0.0.1); rm leaves nothing', async () => {
      await pm.start('web', { networks: ['net1'], publish: ['8080:80', '127.0.0.1:8081:80'] });
      const ip = await pm.ipOf('web', 'net1');
      assert.match(ip, /^10\.77\.0\.\d+$/u);
      assert.equal(await reach(`http://${HOST_IP}:8080${WHO}`), `web ${EXT_IP}`, 'from outside, the client address is kept');
      assert.match(await reach(`http://${HOST_IP}:8080${WHO}`, 'host'), /^web /u, 'from the host, to its own address');
      assert.match(await reach(`http://127.0.0.1:8081${WHO}`, 'host'), /^web /u, 'a port published on 127.0.0.1');
      assert.equal(await pm.sandbox.fetch(`http://${HOST_IP}:8081${WHO}`, 'ext'), '', 'a port published on 127.0.0.1 is not reachable from outside');
      const left = await pm.leftovers();
      const id = await pm.idOf('web');
      assert.deepEqual(left.endpoints, [`${id}:eth0`], 'the endpoint is <container id>:<ifname>');
      assert.deepEqual(left.leases, [`net1/${ip}`]);
      assert.equal(left.ports.length, 2, `two ports in the ledger: ${left.ports.join(' ')}`);
      assert.deepEqual(left.elements, [`${id}:eth0`], 'the firewall elements name their endpoint');
      assert.equal(left.veths.length, 1);
      assert.equal(left.netns.length, 1);
      assert.deepEqual(left.runtimeCache, [`net1-${id}-eth0`], 'libcni caches the result');
      assert.deepEqual(left.containers, ['web']);
      await pm.rm('web');
      await assertNothingLeft(pm, 'after rm -f');
      assert.equal(await pm.sandbox.fetch(`http://${HOST_IP}:8080${WHO}`, 'ext'), '', 'the port is closed');
    });

    it('containers reach each other, their own published port through the host (hairpin) and the outside (masquerade)', async () => {
      await pm.start('a', { networks: ['net1'], publish: ['8080:80'] });
      await pm.start('b', { networks: ['net1'] });
      const [ipA, ipB] = [await pm.ipOf('a', 'net1'), await pm.ipOf('b', 'net1')];
      assert.notEqual(ipA, ipB);
      assert.equal(await waitFor(() => pm.fetchFrom('b', `http://${ipA}${WHO}`), 'b → a'), `a ${ipB}`, 'container to container, addresses kept');
      assert.match(await waitFor(() => pm.fetchFrom('a', `http://${HOST_IP}:8080${WHO}`), 'hairpin'), /^a /u, 'a reaches its own published port');
      assert.match(await waitFor(() => pm.fetchFrom('b', `http://${HOST_IP}:8080${WHO}`), 'b → host:8080'), /^a /u, 'b reaches a through the host');
      assert.equal(
        await waitFor(() => pm.fetchFrom('b', `http://${EXT_IP}${WHO}`), 'b → outside'),
        `ext ${HOST_IP}`,
        'egress is masqueraded to the uplink address',
      );
      await pm.rm('a', 'b');
      await assertNothingLeft(pm, 'after rm -f of both');
    });

    it('restart: the container comes back on the network once, its port answering', async () => {
      await pm.start('web', { networks: ['net1'], publish: ['8080:80'] });
      await reach(`http://${HOST_IP}:8080${WHO}`);
      await pm.ok(['restart', '-t', '0', 'web']);
      const ip = await pm.ipOf('web', 'net1');
      assert.equal(await reach(`http://${HOST_IP}:8080${WHO}`), `web ${EXT_IP}`);
      const left = await pm.leftovers();
      assert.equal(left.endpoints.length, 1, `one endpoint: ${left.endpoints.join(' ')}`);
      assert.deepEqual(left.leases, [`net1/${ip}`], 'one lease, the address podman reports');
      assert.equal(left.veths.length, 1);
      assert.equal(left.netns.length, 1);
      await pm.rm('web');
      await assertNothingLeft(pm, 'after restart and rm');
    });

    it('stop takes the container off the network, start puts it back, rm leaves nothing', async () => {
      await pm.start('web', { networks: ['net1'], publish: ['8080:80'] });
      await reach(`http://${HOST_IP}:8080${WHO}`);
      await pm.ok(['stop', '-t', '0', 'web']);
      const stopped = await pm.leftovers();
      assert.deepEqual(
        { endpoints: stopped.endpoints, leases: stopped.leases, ports: stopped.ports, elements: stopped.elements, veths: stopped.veths },
        { endpoints: [], leases: [], ports: [], elements: [], veths: [] },
        'a stopped container holds nothing of nsnet',
      );
      assert.equal(await pm.sandbox.fetch(`http://${HOST_IP}:8080${WHO}`, 'ext'), '', 'the port is closed while it is stopped');
      await pm.ok(['start', 'web']);
      assert.equal(await reach(`http://${HOST_IP}:8080${WHO}`), `web ${EXT_IP}`);
      await pm.rm('web');
      await assertNothingLeft(pm, 'after stop, start and rm');
    });

    it('ten containers run and removed in parallel, each with a port of its own', async () => {
      const names = Array.from({ length: 10 }, (_, i) => `p${i}`);
      await Promise.all(names.map((n, i) => pm.start(n, { networks: ['net1'], publish: [`${9000 + i}:80`] })));
      const ips = await Promise.all(names.map((n) => pm.ipOf(n, 'net1')));
      assert.equal(new Set(ips).size, 10, `ten addresses: ${ips.join(' ')}`);
      const left = await pm.leftovers();
      assert.equal(left.endpoints.length, 10);
      assert.equal(left.veths.length, 10);
      for (const [i, n] of names.entries()) assert.equal(await reach(`http://${HOST_IP}:${9000 + i}${WHO}`), `${n} ${EXT_IP}`);
      await Promise.all(names.map((n) => pm.rm(n)));
      await assertNothingLeft(pm, 'after ten parallel rm -f');
    });

    it('a chain nsnet-cni → tuning → bandwidth: the sysctl and the shaping are applied, traffic flows, rm removes all of it', async () => {
      pm.network('shaped', {
        subnet: '10.78.0.0/24',
        chain: [
          { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.arp_notify': '1' } },
          { type: 'bandwidth', ingressRate: 100_000_000, ingressBurst: 1_000_000, egressRate: 100_000_000, egressBurst: 1_000_000 },
        ],
      });
      await pm.start('web', { networks: ['shaped'], publish: ['8080:80'] });
      const sysctl = await pm.exec('web', ['cat', '/proc/sys/net/ipv4/conf/eth0/arp_notify']);
      assert.equal(sysctl.stdout.trim(), '1', 'tuning set the sysctl in the container');
      const [veth] = (await pm.leftovers()).veths;
      assert.match(await pm.sandbox.check('tc', ['qdisc', 'show', 'dev', veth]), /tbf|htb/u, 'bandwidth shapes the host end of the veth');
      assert.ok(
        (await pm.sandbox.links()).some((l) => l.startsWith('bwp')),
        'bandwidth made its ifb device',
      );
      assert.equal(await reach(`http://${HOST_IP}:8080${WHO}`), `web ${EXT_IP}`);
      await pm.rm('web');
      await assertNothingLeft(pm, 'after rm of the chained container');
      assert.equal(
        (await pm.sandbox.links()).some((l) => l.startsWith('bwp')),
        false,
        'no ifb device left',
      );
    });

    it("side by side with the reference chain (bridge + portmap): each container reaches the other one's published port", async () => {
      pm.referenceNetwork('ref', '10.88.0.0/24', 'cni-ref0');
      await pm.start('ns', { networks: ['net1'], publish: ['8081:80'] });
      await pm.start('rf', { networks: ['ref'], publish: ['8082:80'] });
      assert.match(await pm.ipOf('rf', 'ref'), /^10\.88\.0\.\d+$/u);
      assert.equal(await reach(`http://${HOST_IP}:8081${WHO}`), `ns ${EXT_IP}`, "nsnet's port from outside");
      assert.equal(await reach(`http://${HOST_IP}:8082${WHO}`), `rf ${EXT_IP}`, 'the reference port from outside');
      assert.match(
        await waitFor(() => pm.fetchFrom('ns', `http://${HOST_IP}:8082${WHO}`), 'nsnet → reference'),
        /^rf /u,
        "the nsnet container reaches the reference one's port",
      );
      assert.match(
        await waitFor(() => pm.fetchFrom('rf', `http://${HOST_IP}:8081${WHO}`), 'reference → nsnet'),
        /^ns /u,
        "the reference container reaches the nsnet one's port",
      );
      await pm.rm('ns', 'rf');
      await assertNothingLeft(pm, 'after rm of both');
    });
  });
}
