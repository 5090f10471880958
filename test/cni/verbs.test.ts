/**
 * nsnet-cni run exactly as a runtime runs it — a process per invocation, CNI_* variables,
 * configuration on stdin, stdout / stderr / exit status checked — for every verb, good and
 * bad requests, once with the daemon and once with the in-node fallback. The host namespace
 * is a test namespace given as `hostNetns`; iproute2, nft and real traffic are the oracles.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readResolvConf } from '../../lib/dns/resolvconf';
import { makeNetns, useSandbox } from '../helpers/sandbox';
import { ipJson, nftJson, sh } from '../helpers/oracle';
import { ask, server } from '../helpers/traffic';
import { containerId, invoke, startTestDaemon, tempStateDir, type Invocation, type Mode, type Outcome } from '../helpers/cni';

const links = (ns: string): string[] =>
  ipJson(['link', 'show'], ns)
    .map((l: any) => l.ifname)
    .sort();

/** Asserts a CNI error: exit 1, error JSON with the code on stdout, a message on stderr. */
function assertError(r: Outcome, code: number, what: string): void {
  assert.equal(r.exitCode, 1, `${what}: exit status (stdout ${r.stdout})`);
  assert.ok(r.json, `${what}: error JSON on stdout, got ${JSON.stringify(r.stdout)}`);
  assert.equal(r.json.code, code, `${what}: ${r.stdout}`);
  assert.equal(typeof r.json.msg, 'string');
  assert.equal(typeof r.json.cniVersion, 'string');
  assert.match(r.stderr, /^nsnet-cni: /u, `${what}: a message on stderr`);
}

for (const mode of ['daemon', 'fallback'] as Mode[]) {
  describe(`nsnet-cni as a process, every verb (${mode})`, function () {
    this.timeout(120000);
    useSandbox();

    let socket: string | undefined;
    let h: string;
    let ext: string;
    let stateDir: string;
    /** A configuration for network `app` in host namespace h. */
    let conf: (extra?: Record<string, unknown>) => Record<string, unknown>;
    const call = (inv: Invocation): Promise<Outcome> => invoke(inv, socket);

    beforeEach(async () => {
      socket = mode === 'daemon' ? (await startTestDaemon()).socket : undefined;
      h = await makeNetns('vh');
      ext = await makeNetns('vx');
      sh('ip', ['-n', h, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ext]);
      sh('ip', ['-n', h, 'addr', 'add', '10.99.0.1/24', 'dev', 'up0']);
      sh('ip', ['-n', h, 'link', 'set', 'up0', 'up']);
      sh('ip', ['-n', ext, 'addr', 'add', '10.99.0.2/24', 'dev', 'eth0']);
      sh('ip', ['-n', ext, 'link', 'set', 'eth0', 'up']);
      stateDir = tempStateDir();
      conf = (extra = {}) => ({ cniVersion: '1.1.0', name: 'app', type: 'nsnet-cni', subnet: '10.55.0.0/16', stateDir, hostNetns: h, ...extra });
    });

    it('ADD prints the result, ADD again returns the same, CHECK passes, DEL removes it, DEL again and DEL of the unknown succeed', async () => {
      const c = await makeNetns('vc');
      const id = containerId('a');
      const att = { containerId: id, netns: `/var/run/netns/${c}`, ifname: 'eth0' };
      const add = await call({ command: 'ADD', ...att, config: conf() });
      assert.equal(add.exitCode, 0, add.stdout + add.stderr);
      assert.equal(add.stderr, '');
      const r = add.json;
      assert.equal(r.cniVersion, '1.1.0');
      assert.equal(r.interfaces.length, 2);
      const [hostEnd, inner] = r.interfaces;
      assert.equal(hostEnd.sandbox, undefined, 'the host end has no sandbox');
      assert.match(hostEnd.mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/u);
      assert.deepEqual(inner, { name: 'eth0', mac: '02:42:0a:37:00:02', mtu: 1500, sandbox: att.netns });
      assert.deepEqual(r.ips, [{ address: '10.55.0.2/16', gateway: '10.55.0.1', interface: 1 }]);
      assert.deepEqual(r.routes, [{ dst: '0.0.0.0/0', gw: '10.55.0.1' }]);
      // Through the daemon, the network's resolver (it serves the names); in node, nothing would answer.
      assert.deepEqual(r.dns, mode === 'daemon' ? { nameservers: ['10.55.0.1'], search: readResolvConf().search } : {});
      // The kernel, through iproute2.
      const eth0 = ipJson(['addr', 'show', 'eth0'], c)[0];
      assert.equal(eth0.address, inner.mac);
      assert.ok(eth0.addr_info.some((a: any) => a.local === '10.55.0.2' && a.prefixlen === 16));
      assert.ok(ipJson(['route', 'show', 'default'], c).some((x: any) => x.gateway === '10.55.0.1'));
      assert.equal(ipJson(['link', 'show', hostEnd.name], h)[0].address, hostEnd.mac);

      const again = await call({ command: 'ADD', ...att, config: conf() });
      assert.equal(again.exitCode, 0, again.stdout);
      assert.deepEqual(again.json.ips, r.ips, 'ADD again returns the same attachment');

      const check = await call({ command: 'CHECK', ...att, config: conf({ prevResult: r }) });
      assert.equal(check.exitCode, 0, check.stdout + check.stderr);
      assert.equal(check.stdout, '');

      const del = await call({ command: 'DEL', ...att, config: conf({ prevResult: r }) });
      assert.equal(del.exitCode, 0, del.stdout + del.stderr);
      assert.equal(del.stdout, '');
      assert.deepEqual(links(c), ['lo'], 'the container interface is gone when DEL returns');
      assert.equal(links(h).includes(hostEnd.name), false);

      for (const [what, inv] of [
        ['DEL twice', { command: 'DEL', ...att, config: conf() }],
        ['DEL of a container never added', { command: 'DEL', ...att, containerId: containerId('never'), config: conf() }],
        ['DEL without CNI_NETNS', { command: 'DEL', containerId: id, ifname: 'eth0', config: conf() }],
        ['DEL on a network that does not exist', { command: 'DEL', ...att, config: conf({ name: 'nonet' }) }],
      ] as [string, Invocation][]) {
        const x = await call(inv);
        assert.equal(x.exitCode, 0, `${what}: ${x.stdout}${x.stderr}`);
        assert.equal(x.stdout, '', what);
      }
      assertError(await call({ command: 'CHECK', ...att, config: conf({ prevResult: r }) }), 3, 'CHECK after DEL');
    });

    it('publishes runtimeConfig.portMappings: TCP and UDP reach the container from outside', async () => {
      const c = await makeNetns('vp');
      const add = await call({
        command: 'ADD',
        containerId: containerId('p'),
        netns: `/var/run/netns/${c}`,
        ifname: 'eth0',
        config: conf({
          capabilities: { portMappings: true },
          runtimeConfig: {
            portMappings: [
              { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
              { hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '10.99.0.1' },
            ],
          },
        }),
      });
      assert.equal(add.exitCode, 0, add.stdout);
      await server(c, 80, 'c1');
      await server(c, 53, 'c1', 'udp');
      assert.equal(ask(ext, '10.99.0.1', 8080), 'c1 10.99.0.2');
      assert.equal(ask(ext, '10.99.0.1', 5353, 'udp'), 'c1 10.99.0.2');
      assert.equal(ask(ext, '10.99.0.1', 8081), '', 'an unpublished port answers nothing');
    });

    it('CHECK finds what changed behind its back (CNI error 105); a missing namespace is error 3', async () => {
      const c = await makeNetns('vk');
      const att = { containerId: containerId('k'), netns: `/var/run/netns/${c}`, ifname: 'eth0' };
      const add = await call({ command: 'ADD', ...att, config: conf() });
      assert.equal(add.exitCode, 0, add.stdout);
      const prevResult = add.json;
      sh('ip', ['-n', c, 'link', 'set', 'eth0', 'address', '02:00:00:00:00:99']);
      const mac = await call({ command: 'CHECK', ...att, config: conf({ prevResult }) });
      assertError(mac, 105, 'CHECK with a changed MAC');
      assert.match(mac.json.msg, /MAC 02:00:00:00:00:99/u);
      sh('ip', ['-n', c, 'link', 'del', 'eth0']);
      const gone = await call({ command: 'CHECK', ...att, config: conf({ prevResult }) });
      assertError(gone, 105, 'CHECK after the interface was deleted');
      assert.match(gone.json.msg, /eth0 is missing/u);
      const missing = { ...att, netns: '/var/run/netns/no-such-ns' };
      assertError(await call({ command: 'ADD', ...missing, containerId: containerId('m'), config: conf() }), 3, 'ADD into a missing namespace');
      assertError(await call({ command: 'CHECK', ...att, netns: missing.netns, config: conf({ prevResult }) }), 105, 'CHECK naming another namespace than ADD');
      sh('ip', ['netns', 'del', c]);
      assertError(await call({ command: 'CHECK', ...att, config: conf({ prevResult }) }), 3, 'CHECK after the namespace is gone');
      const del = await call({ command: 'DEL', ...att, config: conf({ prevResult }) });
      assert.equal(del.exitCode, 0, `DEL after the namespace is gone: ${del.stdout}`);
    });

    it("refuses bad requests with the spec's codes and changes nothing", async () => {
      const c = await makeNetns('vb');
      const att = { containerId: containerId('b'), netns: `/var/run/netns/${c}`, ifname: 'eth0' };
      const held = await call({ command: 'ADD', ...att, config: conf({ runtimeConfig: { portMappings: [{ hostPort: 9000, containerPort: 80 }] } }) });
      assert.equal(held.exitCode, 0, held.stdout);
      const c2 = await makeNetns('vb');
      const att2 = { containerId: containerId('b2'), netns: `/var/run/netns/${c2}`, ifname: 'eth0' };
      const before = JSON.stringify([links(h), links(c2), nftJson(h)]);
      const cases: [string, Invocation, number][] = [
        ['stdin is not JSON', { command: 'ADD', ...att2, config: '{"cniVersion": "1.1.0",' }, 6],
        ['stdin is empty', { command: 'ADD', ...att2, config: '' }, 6],
        ['a JSON array', { command: 'ADD', ...att2, config: '[1]' }, 7],
        ['no name', { command: 'ADD', ...att2, config: { ...conf(), name: undefined } }, 7],
        ['a name of the wrong type', { command: 'ADD', ...att2, config: conf({ name: 42 }) }, 7],
        ['a name with a slash', { command: 'ADD', ...att2, config: conf({ name: 'a/b' }) }, 7],
        ['a subnet that is a number', { command: 'ADD', ...att2, config: conf({ subnet: 10 }) }, 7],
        ['an MTU that is a string', { command: 'ADD', ...att2, config: conf({ mtu: '1500' }) }, 7],
        ['an unknown driver', { command: 'ADD', ...att2, config: conf({ driver: 'ipvlan' }) }, 7],
        ['a misspelt field', { command: 'ADD', ...att2, config: conf({ subent: '10.1.0.0/16' }) }, 2],
        ['an ipam section', { command: 'ADD', ...att2, config: conf({ ipam: { type: 'host-local' } }) }, 2],
        [
          '__proto__ nested in runtimeConfig',
          {
            command: 'ADD',
            ...att2,
            config: `{"cniVersion":"1.1.0","name":"app","type":"nsnet-cni","stateDir":${JSON.stringify(stateDir)},"hostNetns":"${h}","runtimeConfig":{"__proto__":{"polluted":true}}}`,
          },
          7,
        ],
        [
          'constructor at the top',
          { command: 'ADD', ...att2, config: `{"cniVersion":"1.1.0","name":"app","type":"nsnet-cni","constructor":{"prototype":{}}}` },
          7,
        ],
        ['hostPort 0', { command: 'ADD', ...att2, config: conf({ runtimeConfig: { portMappings: [{ hostPort: 0, containerPort: 80 }] } }) }, 7],
        [
          'protocol icmp',
          { command: 'ADD', ...att2, config: conf({ runtimeConfig: { portMappings: [{ hostPort: 81, containerPort: 80, protocol: 'icmp' }] } }) },
          7,
        ],
        [
          'hostIP ::1 (the kernel cannot DNAT IPv6 loopback)',
          { command: 'ADD', ...att2, config: conf({ runtimeConfig: { portMappings: [{ hostPort: 81, containerPort: 80, hostIP: '::1' }] } }) },
          7,
        ],
        [
          'hostIP :: on a network without IPv6',
          { command: 'ADD', ...att2, config: conf({ runtimeConfig: { portMappings: [{ hostPort: 81, containerPort: 80, hostIP: '::' }] } }) },
          7,
        ],
        ['portMappings not an array', { command: 'ADD', ...att2, config: conf({ runtimeConfig: { portMappings: {} } }) }, 7],
        ['a relative stateDir', { command: 'ADD', ...att2, config: conf({ stateDir: 'var/lib' }) }, 7],
        ['a hostNetns that does not exist', { command: 'ADD', ...att2, config: conf({ hostNetns: 'no-such-host' }) }, 7],
        ['no cniVersion', { command: 'ADD', ...att2, config: { ...conf(), cniVersion: undefined } }, 7],
        ['cniVersion 0.2.0', { command: 'ADD', ...att2, config: conf({ cniVersion: '0.2.0' }) }, 1],
        ['cniVersion 2.0.0', { command: 'ADD', ...att2, config: conf({ cniVersion: '2.0.0' }) }, 1],
        ['CHECK in CNI 0.3.1', { command: 'CHECK', ...att, config: conf({ cniVersion: '0.3.1' }) }, 1],
        ['GC in CNI 1.0.0', { command: 'GC', config: conf({ cniVersion: '1.0.0', 'cni.dev/valid-attachments': [] }) }, 1],
        ['STATUS in CNI 0.4.0', { command: 'STATUS', config: conf({ cniVersion: '0.4.0' }) }, 1],
        ['no CNI_COMMAND', { command: 'ADD', ...att2, env: { CNI_COMMAND: undefined }, config: conf() }, 4],
        ['an unknown CNI_COMMAND', { command: 'FROB', ...att2, config: conf() }, 4],
        ['no CNI_CONTAINERID', { command: 'ADD', ...att2, containerId: undefined, config: conf() }, 4],
        ['a CNI_CONTAINERID with a slash', { command: 'ADD', ...att2, containerId: '../etc', config: conf() }, 4],
        ['a CNI_IFNAME with a space', { command: 'ADD', ...att2, ifname: 'eth 0', config: conf() }, 4],
        ['a CNI_IFNAME of 16 bytes', { command: 'ADD', ...att2, ifname: 'a234567890123456', config: conf() }, 4],
        ['ADD without CNI_NETNS', { command: 'ADD', ...att2, netns: undefined, config: conf() }, 4],
        ['a relative CNI_NETNS', { command: 'ADD', ...att2, netns: 'netns/x', config: conf() }, 4],
        ['a malformed CNI_ARGS', { command: 'ADD', ...att2, args: 'IgnoreUnknown=1;oops', config: conf() }, 4],
        ["a subnet other than the network's", { command: 'ADD', ...att2, config: conf({ subnet: '10.56.0.0/16' }) }, 7],
        ["an MTU other than the network's", { command: 'ADD', ...att2, config: conf({ mtu: 1400 }) }, 7],
        ["a predefined network's name", { command: 'ADD', ...att2, config: conf({ name: 'host', subnet: undefined }) }, 7],
        [
          'a port another container holds',
          { command: 'ADD', ...att2, config: conf({ runtimeConfig: { portMappings: [{ hostPort: 9000, containerPort: 80 }] } }) },
          101,
        ],
        ['a static address another container holds', { command: 'ADD', ...att2, config: conf({ runtimeConfig: { ips: ['10.55.0.2/16'] } }) }, 102],
        ['the same attachment into another namespace', { command: 'ADD', ...att, netns: att2.netns, config: conf() }, 104],
        ['a CNI_IFNAME the container already has (lo)', { command: 'ADD', ...att2, ifname: 'lo', config: conf() }, 106],
        ['GC without valid-attachments', { command: 'GC', config: conf() }, 7],
      ];
      for (const [what, inv, code] of cases) assertError(await call(inv), code, what);
      assert.equal(JSON.stringify([links(h), links(c2), nftJson(h)]), before, 'nothing changed in the host or the container');
    });

    it('GC removes the attachments of its network not in cni.dev/valid-attachments, and nothing else', async () => {
      const spaces = await Promise.all(['g1', 'g2', 'g3', 'g4'].map((p) => makeNetns(p)));
      const ids = spaces.map((_, i) => containerId(`g${i}`));
      for (const [i, c] of spaces.entries()) {
        // The fourth container is on another network: GC of `app` leaves it alone.
        const config = i === 3 ? conf({ name: 'other', subnet: '10.57.0.0/16' }) : conf();
        const r = await call({ command: 'ADD', containerId: ids[i], netns: `/var/run/netns/${c}`, ifname: 'eth0', config });
        assert.equal(r.exitCode, 0, r.stdout);
      }
      // The second container is listed under another interface name: not a valid attachment.
      const valid = [
        { containerID: ids[0], ifname: 'eth0' },
        { containerID: ids[1], ifname: 'net1' },
        { containerID: ids[2], ifname: 'eth0' },
      ];
      const gc = await call({ command: 'GC', config: conf({ 'cni.dev/valid-attachments': valid }) });
      assert.equal(gc.exitCode, 0, gc.stdout + gc.stderr);
      assert.equal(gc.stdout, '');
      assert.deepEqual(
        spaces.map((c) => links(c)),
        [['eth0', 'lo'], ['lo'], ['eth0', 'lo'], ['eth0', 'lo']],
        'only the second container was removed',
      );
      const check = await call({ command: 'CHECK', containerId: ids[2], netns: `/var/run/netns/${spaces[2]}`, ifname: 'eth0', config: conf() });
      assert.equal(check.exitCode, 0, check.stdout);
      // The older spelling libcni also sends.
      const old = await call({ command: 'GC', config: conf({ 'cni.dev/attachments': [] }) });
      assert.equal(old.exitCode, 0, old.stdout);
      assert.deepEqual(
        spaces.map((c) => links(c)),
        [['lo'], ['lo'], ['lo'], ['eth0', 'lo']],
      );
    });

    it('STATUS: success when usable, 50 when the state directory is unusable, 51 after the firewall was flushed', async () => {
      const ok = await call({ command: 'STATUS', config: conf() });
      assert.equal(ok.exitCode, 0, ok.stdout + ok.stderr);
      assert.equal(ok.stdout, '');
      const file = path.join(stateDir, 'not-a-dir');
      fs.writeFileSync(file, 'x');
      assertError(await call({ command: 'STATUS', config: conf({ stateDir: file }) }), 50, 'STATUS with a file as state directory');
      const c = await makeNetns('vs');
      assert.equal((await call({ command: 'ADD', containerId: containerId('s'), netns: `/var/run/netns/${c}`, ifname: 'eth0', config: conf() })).exitCode, 0);
      assert.equal((await call({ command: 'STATUS', config: conf() })).exitCode, 0);
      sh('nft', ['flush', 'ruleset'], h);
      assertError(await call({ command: 'STATUS', config: conf() }), 51, 'STATUS after nft flush ruleset');
    });

    it('VERSION lists the versions; ADD in CNI 0.3.1 and 0.4.0 prints results of that shape', async () => {
      const v = await call({ command: 'VERSION', config: { cniVersion: '0.4.0' } });
      assert.equal(v.exitCode, 0);
      assert.deepEqual(v.json, { cniVersion: '0.4.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0'] }, "the versions up to the caller's");
      const v11 = await call({ command: 'VERSION', config: { cniVersion: '1.1.0' } });
      assert.deepEqual(v11.json, { cniVersion: '1.1.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
      const latest = await call({ command: 'VERSION', config: '' });
      assert.equal(latest.json.cniVersion, '1.1.0');
      for (const version of ['0.3.1', '0.4.0', '1.0.0']) {
        const c = await makeNetns('vv');
        const r = await call({
          command: 'ADD',
          containerId: containerId(version),
          netns: `/var/run/netns/${c}`,
          ifname: 'eth0',
          config: conf({ cniVersion: version }),
        });
        assert.equal(r.exitCode, 0, r.stdout);
        assert.equal(r.json.cniVersion, version);
        const old = version !== '1.0.0';
        assert.equal(r.json.ips[0].version, old ? '4' : undefined, `${version}: ips carry a version before 1.0.0`);
        assert.equal(r.json.interfaces[1].mtu, undefined, `${version}: no mtu before 1.1.0`);
      }
    });

    it('10 concurrent ADDs for different containers get unique addresses; 10 concurrent DELs remove them', async () => {
      const spaces = await Promise.all(Array.from({ length: 10 }, () => makeNetns('vn')));
      const ids = spaces.map((_, i) => containerId(`n${i}`));
      const adds = await Promise.all(
        spaces.map((c, i) =>
          call({
            command: 'ADD',
            containerId: ids[i],
            netns: `/var/run/netns/${c}`,
            ifname: 'eth0',
            config: conf({ runtimeConfig: { portMappings: [{ hostPort: 7000 + i, containerPort: 80 }] } }),
          }),
        ),
      );
      for (const r of adds) assert.equal(r.exitCode, 0, r.stdout + r.stderr);
      const addrs = adds.map((r) => r.json.ips[0].address);
      assert.equal(new Set(addrs).size, 10, `unique: ${addrs.join(' ')}`);
      for (const [i, c] of spaces.entries()) {
        assert.ok(
          ipJson(['addr', 'show', 'eth0'], c)[0].addr_info.some((a: any) => `${a.local}/${a.prefixlen}` === addrs[i]),
          `container ${i} has ${addrs[i]}`,
        );
      }
      await server(spaces[7]!, 80, 'n7');
      assert.equal(ask(ext, '10.99.0.1', 7007), 'n7 10.99.0.2');
      const dels = await Promise.all(
        spaces.map((c, i) => call({ command: 'DEL', containerId: ids[i], netns: `/var/run/netns/${c}`, ifname: 'eth0', config: conf() })),
      );
      for (const r of dels) assert.equal(r.exitCode, 0, r.stdout + r.stderr);
      for (const c of spaces) assert.deepEqual(links(c), ['lo']);
      assert.equal(links(h).filter((n) => n.startsWith('ve-')).length, 0, 'no veth left in the host');
    });
  });
}
