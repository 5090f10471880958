/**
 * nsnet-cni as the main plugin of a chain with the CNI reference plugins (Debian
 * containernetworking-plugins, /usr/lib/cni): nsnet-cni → tuning (a MAC and a sysctl in the
 * container) → bandwidth (ingress and egress shaping on the host end of the veth, an ifb
 * device), each plugin its own process under `ip netns exec HOST`, each later one given the
 * previous result as `prevResult`, as libcni runs a configuration list. Then CHECK along the
 * chain with the final result, real traffic through the published port, and DEL in reverse.
 * Once with the daemon (it serves the client's namespace), once with the in-node fallback.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeNetns, useSandbox } from '../helpers/sandbox';
import { ipJson, sh } from '../helpers/oracle';
import { ask, server } from '../helpers/traffic';
import { CNI_PATH, containerId, invoke, startTestDaemon, tempStateDir, type Mode } from '../helpers/cni';

const VERSION = '1.0.0'; // what the reference plugins 1.1.1 speak

for (const mode of ['daemon', 'fallback'] as Mode[]) {
  describe(`CNI chain nsnet-cni → tuning → bandwidth (${mode})`, function () {
    this.timeout(90000);
    useSandbox();

    it('each plugin takes the previous result; CHECK passes along the chain; traffic flows; DEL in reverse removes everything', async () => {
      const socket = mode === 'daemon' ? (await startTestDaemon()).socket : undefined;
      const h = await makeNetns('ch');
      const ext = await makeNetns('cx');
      sh('ip', ['-n', h, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ext]);
      sh('ip', ['-n', h, 'addr', 'add', '10.99.0.1/24', 'dev', 'up0']);
      sh('ip', ['-n', h, 'link', 'set', 'up0', 'up']);
      sh('ip', ['-n', ext, 'addr', 'add', '10.99.0.2/24', 'dev', 'eth0']);
      sh('ip', ['-n', ext, 'link', 'set', 'eth0', 'up']);
      const c = await makeNetns('cc');
      const stateDir = tempStateDir();
      const tuningDir = path.join(stateDir, 'tuning');
      const id = containerId('chain');
      const netns = `/var/run/netns/${c}`;
      const base = { cniVersion: VERSION, name: 'chain' };
      const confs: [string, Record<string, unknown>][] = [
        [
          'nsnet-cni',
          {
            ...base,
            type: 'nsnet-cni',
            subnet: '10.66.0.0/16',
            stateDir,
            capabilities: { portMappings: true },
            runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '' }] },
          },
        ],
        ['tuning', { ...base, type: 'tuning', mac: 'c2:00:00:00:aa:01', sysctl: { 'net.ipv4.conf.eth0.arp_notify': '1' }, dataDir: tuningDir }],
        ['bandwidth', { ...base, type: 'bandwidth', ingressRate: 100_000_000, ingressBurst: 1_000_000, egressRate: 100_000_000, egressBurst: 1_000_000 }],
      ];
      const plugin = (type: string): string =>
        type === 'nsnet-cni' ? path.join(__dirname, '..', '..', '..', 'build', 'Release', 'nsnet-cni') : path.join(CNI_PATH, type);
      const call = (command: string, type: string, conf: Record<string, unknown>, prevResult?: unknown) =>
        invoke(
          { command, containerId: id, netns, ifname: 'eth0', host: h, plugin: plugin(type), config: prevResult === undefined ? conf : { ...conf, prevResult } },
          socket,
        );

      // ADD along the chain.
      let prev: any;
      for (const [type, conf] of confs) {
        const r = await call('ADD', type, conf, prev);
        assert.equal(r.exitCode, 0, `${type} ADD: ${r.stdout} ${r.stderr}`);
        assert.equal(r.json.cniVersion, VERSION, `${type} prints a ${VERSION} result`);
        prev = r.json;
      }
      const final = prev;
      const hostEnd = final.interfaces.find((i: any) => i.sandbox === undefined || i.sandbox === '');
      const inner = final.interfaces.find((i: any) => i.name === 'eth0' && i.sandbox === netns);
      assert.ok(hostEnd && inner, JSON.stringify(final.interfaces));
      assert.equal(inner.mac, 'c2:00:00:00:aa:01', 'tuning changed the MAC and said so in its result');
      assert.ok(
        final.interfaces.some((i: any) => i.name.startsWith('bwp')),
        'bandwidth added its ifb device',
      );
      assert.deepEqual(
        final.ips.map((i: any) => i.address),
        ['10.66.0.2/16'],
      );

      // The kernel agrees (oracles: ip, tc, sysctl inside the namespaces).
      assert.equal(ipJson(['link', 'show', 'eth0'], c)[0].address, 'c2:00:00:00:aa:01');
      assert.equal(sh('cat', ['/proc/sys/net/ipv4/conf/eth0/arp_notify'], c).trim(), '1');
      assert.match(sh('tc', ['-n', h, 'qdisc', 'show', 'dev', hostEnd.name]), /tbf|htb/u, 'shaping on the host end of the veth');
      assert.equal(
        ipJson(['link', 'show', 'master', ipJson(['link', 'show', hostEnd.name], h)[0].master], h).some((l: any) => l.ifname === hostEnd.name),
        true,
      );

      // Traffic through the published port, from outside.
      await server(c, 80, 'c1');
      assert.equal(ask(ext, '10.99.0.1', 8080), 'c1 10.99.0.2');

      // CHECK along the chain with the final result: nsnet-cni accepts tuning's MAC.
      for (const [type, conf] of confs) {
        const r = await call('CHECK', type, conf, final);
        assert.equal(r.exitCode, 0, `${type} CHECK: ${r.stdout} ${r.stderr}`);
        assert.equal(r.stdout.trim(), '', `${type} CHECK prints nothing`);
      }

      // DEL in reverse order, each with the final result.
      for (const [type, conf] of [...confs].reverse()) {
        const r = await call('DEL', type, conf, final);
        assert.equal(r.exitCode, 0, `${type} DEL: ${r.stdout} ${r.stderr}`);
      }
      assert.deepEqual(
        ipJson(['link', 'show'], c).map((l: any) => l.ifname),
        ['lo'],
        'the container has only loopback',
      );
      assert.equal(ask(ext, '10.99.0.1', 8080), '', 'the port is closed');
      const left = ipJson(['link', 'show'], h).map((l: any) => l.ifname);
      assert.equal(
        left.some((n: string) => n.startsWith('bwp')),
        false,
        `no ifb left: ${left.join(' ')}`,
      );
      assert.equal(fs.existsSync(stateDir), true);
    });
  });
}
