/**
 * Dual-stack bridge networks end to end through the NetworkHost façade, with real traffic:
 * published ports over IPv6 and IPv4 (from an external peer with an IPv6 address on the uplink,
 * from the host, hairpin), `hostIp` choosing the family, egress over IPv6 seen as the host's
 * address, isolation, the host's listeners by family, and disconnect / reconcile / gc with IPv6
 * elements. Oracles: `ip -j`, `nft -j`, `conntrack -L -f ipv6`, the `nsnet` CLI.
 *
 *   ext eth0 10.98.0.2, 2001:db8:98::2 ── up0 10.98.0.1, 2001:db8:98::1 (+ ::3) [h]
 *   h: bridge networks, e.g. ds 172.50.0.0/24 + fd00:50::/64 (ULA: egress masqueraded)
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Netns, NsnetError, type NetworkHost } from '../../lib/index';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';
import { makeWorld } from '../helpers/world';
import { conntrackList, ipJson, nftObjects, sh } from '../helpers/oracle';
import { ask, echoServer, failed, tcp, udp } from '../helpers/echo';
import { cli, json } from '../cli/run';

const HOST = '10.98.0.1';
const PEER = '10.98.0.2';
const HOST6 = '2001:db8:98::1';
const HOST6B = '2001:db8:98::3';
const PEER6 = '2001:db8:98::2';

/**
 * The first IPv6 contact with a container just connected may wait a second: the host's first
 * neighbour solicitation for it can go unanswered while its interface's IPv6 comes up, and TCP
 * sends its SYN again after 1 s. Later requests use the helpers' default.
 */
const FIRST = 4000;

const ruleCount = (ns: string): number => nftObjects('rule', ns).length;

/** nsnet's published-port elements: `set key -> value owner`, sorted. */
function published(ns: string): string[] {
  const out: string[] = [];
  for (const m of nftObjects('map', ns)) {
    if (m.table !== 'nsnet' || !String(m.name).startsWith('published')) continue;
    for (const [k, val] of m.elem ?? []) {
      const key = k.elem?.val ?? k;
      out.push(`${m.name} ${JSON.stringify(key.concat ?? key)} -> ${JSON.stringify(val.concat ?? val)} ${k.elem?.comment ?? ''}`);
    }
  }
  return out.sort();
}

async function rejects(p: Promise<unknown>, code: string, re?: RegExp): Promise<NsnetError> {
  let err: unknown;
  await assert.rejects(p, (e: unknown) => {
    err = e;
    return true;
  });
  assert.ok(err instanceof NsnetError, `expected an NsnetError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  if (re) assert.match(err.message, re);
  return err;
}

/** Processes listening in `ns` (TCP), each `{ port, host, ipv6Only }`, until the test ends. */
async function listeners(ns: string, socks: { port: number; host: string; ipv6Only?: boolean }[]): Promise<void> {
  const p = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      `
    const net = require('net'); let n = ${socks.length};
    for (const s of ${JSON.stringify(socks)}) net.createServer().listen(s, () => { if (--n === 0) console.log('ready'); }).on('error', (e) => { console.error(e.message); process.exit(2); });
    setTimeout(() => {}, 600000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  registerCleanup(() => {
    p.kill();
  }, `stop listeners in ${ns}`);
  await new Promise((r) => p.stdout.once('data', r));
}

describe('dual-stack networks (NetworkHost, real traffic over IPv6 and IPv4)', function () {
  this.timeout(120000);
  useSandbox();

  let h: string;
  let ext: string;
  let host: NetworkHost;
  let stateDir: string;

  beforeEach(async () => {
    ({ h, ext, host, stateDir } = await makeWorld({ prefix: 's6', hostIp: HOST, extIp: PEER }));
    sh('ip', ['-n', h, 'addr', 'add', `${HOST6}/64`, 'dev', 'up0', 'nodad']);
    sh('ip', ['-n', ext, 'addr', 'add', `${PEER6}/64`, 'dev', 'eth0', 'nodad']);
    await echoServer(ext, 'ext', [9000], [9053]);
  });

  it("publishes on both families: reachable from outside, from the host and hairpin; egress over IPv6 is the host's address; conntrack shows both NATs; the rule count stays flat", async () => {
    await host.createNetwork({ name: 'ds', subnet: '172.50.0.0/24', subnet6: 'fd00:50::/64' });
    const [c1, c2, c3] = [await makeNetns('s6a'), await makeNetns('s6b'), await makeNetns('s6c')];
    const e1 = await host.connect('ds', {
      id: 'c1',
      netns: c1,
      publish: [
        { protocol: 'tcp', hostPort: 8080, containerPort: 80 },
        { protocol: 'udp', hostPort: 5353, containerPort: 53 },
      ],
    });
    await host.connect('ds', { id: 'c2', netns: c2 });
    assert.deepEqual([e1.ipv4, e1.ipv6, e1.gateway6], ['172.50.0.2/24', 'fd00:50::2/64', 'fd00:50::1']);
    // What IPv6 rides on: forwarding in the host, a default route via gateway6 in the container.
    assert.equal(await Netns.sysctl(h, 'net.ipv6.conf.all.forwarding'), '1');
    assert.deepEqual(
      ipJson(['-6', 'route', 'show', 'default'], c1).map((r: any) => [r.gateway, r.dev]),
      [['fd00:50::1', 'eth0']],
    );
    await echoServer(c1, 'c1', [80], [53]);

    assert.deepEqual(
      ask(
        ext,
        [
          { proto: 'tcp', addr: HOST6, port: 8080 },
          { proto: 'udp', addr: HOST6, port: 5353 },
          { proto: 'tcp', addr: HOST, port: 8080 },
          { proto: 'udp', addr: HOST, port: 5353 },
          { proto: 'tcp', addr: HOST6, port: 8081 },
        ],
        FIRST,
      ),
      [`c1:80 ${PEER6}`, `c1:53 ${PEER6}`, `c1:80 ${PEER}`, `c1:53 ${PEER}`, 'error:ECONNREFUSED'],
      'the external peer, both families',
    );
    assert.equal(tcp(h, HOST6, 8080), `c1:80 ${HOST6}`, 'from the host itself');
    assert.equal(tcp(c2, HOST6, 8080), 'c1:80 fd00:50::1', 'hairpin from a container of the network');
    assert.equal(tcp(c1, HOST6, 8080), 'c1:80 fd00:50::1', 'hairpin: a container reaches its own published port');
    assert.deepEqual(
      ask(c1, [
        { proto: 'tcp', addr: PEER6, port: 9000 },
        { proto: 'udp', addr: PEER6, port: 9053 },
        { proto: 'tcp', addr: PEER, port: 9000 },
      ]),
      [`ext:9000 ${HOST6}`, `ext:9053 ${HOST6}`, `ext:9000 ${HOST}`],
      "egress: the peer sees the host's address (ULA masqueraded)",
    );

    // The conntrack oracle: the DNAT of the published port and the SNAT of egress, over IPv6.
    const ct = conntrackList(h, ['-f', 'ipv6']);
    assert.ok(
      ct.some((l) => /^tcp .* src=2001:db8:98::2 dst=2001:db8:98::1 sport=\d+ dport=8080 src=fd00:50::2 dst=2001:db8:98::2 sport=80 /u.test(l)),
      `DNAT entry in\n${ct.join('\n')}`,
    );
    assert.ok(
      ct.some((l) => /^tcp .* src=fd00:50::2 dst=2001:db8:98::2 sport=\d+ dport=9000 src=2001:db8:98::2 dst=2001:db8:98::1 sport=9000 /u.test(l)),
      `SNAT entry in\n${ct.join('\n')}`,
    );
    assert.ok(
      ct.some((l) => /^udp .* dst=2001:db8:98::1 sport=\d+ dport=5353 src=fd00:50::2 dst=2001:db8:98::2 sport=53 /u.test(l)),
      'UDP DNAT entry',
    );

    // 200 more IPv6 ports: elements, not rules.
    const rules = ruleCount(h);
    assert.equal(rules, 25, 'the skeleton: 25 rules');
    await host.connect('ds', { id: 'c3', netns: c3, publish: [{ protocol: 'tcp', hostIp: '::', hostPort: 10000, hostPortEnd: 10199, containerPort: 1000 }] });
    assert.equal(ruleCount(h), rules, 'the same rules with 200 more IPv6 ports');
    assert.equal(published(h).filter((e) => e.startsWith('published_any6 ') && e.endsWith('ep:c3')).length, 200);
    assert.equal(published(h).filter((e) => e.startsWith('published_any ') && e.endsWith('ep:c3')).length, 0, 'none over IPv4');

    // inspect and `nsnet port` show the IPv6 bindings.
    const ep = (await host.inspectNetwork('ds')).endpoints.find((x) => x.id === 'c1')!;
    assert.deepEqual(
      [ep.ipv6, ep.ports],
      [
        'fd00:50::2/64',
        [
          { protocol: 'tcp', hostPort: 8080, containerPort: 80 },
          { protocol: 'udp', hostPort: 5353, containerPort: 53 },
        ],
      ],
    );
    const run = cli(stateDir, h);
    const text = run(['port', 'c1']);
    assert.equal(text.status, 0, text.stderr);
    assert.deepEqual(text.stdout.trim().split('\n'), ['80/tcp -> 0.0.0.0:8080', '80/tcp -> [::]:8080', '53/udp -> 0.0.0.0:5353', '53/udp -> [::]:5353']);
    assert.deepEqual(run(['port', 'c3', '1005']).stdout.trim(), '1005/tcp -> [::]:10005');
    const ls = run(['network', 'inspect', 'ds']);
    assert.match(ls.stdout, /0\.0\.0\.0:8080->80\/tcp, \[::\]:8080->80\/tcp/u);
    assert.match(ls.stdout, /\[::\]:10000-10199->1000-1199\/tcp/u);
    assert.deepEqual(json(run(['--json', 'port', 'c3'])), [
      { network: 'ds', protocol: 'tcp', hostIp: '::', hostPort: 10000, hostPortEnd: 10199, containerPort: 1000 },
    ]);
  });

  it('hostIp picks the family: 0.0.0.0 IPv4 only, :: IPv6 only (two containers on one port), one IPv6 address; refusals are coded and change nothing', async () => {
    sh('ip', ['-n', h, 'addr', 'add', `${HOST6B}/64`, 'dev', 'up0', 'nodad']);
    await host.createNetwork({ name: 'ds', subnet: '172.51.0.0/24', subnet6: 'fd00:51::/64' });
    await host.createNetwork({ name: 'v4', subnet: '172.52.0.0/24' });
    const ns = await Promise.all(['s6d', 's6e', 's6f', 's6g', 's6h', 's6i'].map((p) => makeNetns(p)));
    const [c1, c2, c3, c4, c5, c6] = ns as [string, string, string, string, string, string];
    await host.connect('ds', { id: 'c1', netns: c1, publish: [{ protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 8081, containerPort: 80 }] });
    await host.connect('ds', { id: 'c2', netns: c2, publish: [{ protocol: 'tcp', hostIp: '::', hostPort: 8081, containerPort: 80 }] });
    await host.connect('ds', { id: 'c3', netns: c3, publish: [{ protocol: 'tcp', hostIp: HOST6, hostPort: 8082, containerPort: 80 }] });
    const e5 = await host.connect('ds', { id: 'c5', netns: c5, publish: [{ protocol: 'tcp', hostPort: 0, containerPort: 80 }] });
    await host.connect('v4', { id: 'c6', netns: c6, publish: [{ protocol: 'tcp', hostPort: 8083, containerPort: 80 }] });
    for (const [c, name] of [
      [c1, 'c1'],
      [c2, 'c2'],
      [c3, 'c3'],
      [c5, 'c5'],
      [c6, 'c6'],
    ] as const)
      await echoServer(c, name, [80], []);
    const p5 = e5.ports[0]!.hostPort;
    assert.ok(p5 >= 32768, `picked ${p5}`);
    assert.deepEqual(
      ask(
        ext,
        [
          { proto: 'tcp', addr: HOST, port: 8081 },
          { proto: 'tcp', addr: HOST6, port: 8081 },
          { proto: 'tcp', addr: HOST6, port: 8082 },
          { proto: 'tcp', addr: HOST6B, port: 8082 },
          { proto: 'tcp', addr: HOST, port: 8082 },
          { proto: 'tcp', addr: HOST, port: p5 },
          { proto: 'tcp', addr: HOST6, port: p5 },
          { proto: 'tcp', addr: HOST, port: 8083 },
          { proto: 'tcp', addr: HOST6, port: 8083 },
        ],
        FIRST,
      ),
      [
        `c1:80 ${PEER}`,
        `c2:80 ${PEER6}`,
        `c3:80 ${PEER6}`,
        'error:ECONNREFUSED',
        'error:ECONNREFUSED',
        `c5:80 ${PEER}`,
        `c5:80 ${PEER6}`,
        `c6:80 ${PEER}`,
        'error:ECONNREFUSED',
      ],
    );
    // An IPv4-only network's port leaves [::]:8083 free for another container.
    await host.connect('ds', { id: 'c4', netns: c4, publish: [{ protocol: 'tcp', hostIp: '::', hostPort: 8083, containerPort: 80 }] });
    await echoServer(c4, 'c4', [80], []);
    assert.equal(tcp(ext, HOST6, 8083, FIRST), `c4:80 ${PEER6}`);
    await host.disconnect('ds', 'c4');
    await host.reap();

    const before = JSON.stringify([published(h), await host.listEndpoints()]);
    const p = (hostPort: number, hostIp?: string) => [{ protocol: 'tcp' as const, hostPort, containerPort: 80, ...(hostIp !== undefined ? { hostIp } : {}) }];
    await rejects(host.connect('ds', { id: 'c4', netns: c4, publish: p(8081) }), 'ERR_PORT_IN_USE', /0\.0\.0\.0:8081 is held by endpoint c1/u);
    await rejects(host.connect('ds', { id: 'c4', netns: c4, publish: p(8082, '::') }), 'ERR_PORT_IN_USE', /endpoint c3/u);
    await rejects(host.connect('ds', { id: 'c4', netns: c4, publish: p(8082, '::1') }), 'ERR_INVALID_HOST_IP', /::1/u);
    await rejects(host.connect('ds', { id: 'c4', netns: c4, publish: p(8082, 'fe80::1') }), 'ERR_INVALID_HOST_IP');
    await rejects(host.connect('v4', { id: 'c4', netns: c4, publish: p(9000, '::') }), 'ERR_NO_IPV6_SUBNET', /network v4 has no IPv6 subnet/u);
    await rejects(host.connect('v4', { id: 'c4', netns: c4, publish: p(9000, HOST6) }), 'ERR_NO_IPV6_SUBNET');
    await rejects(host.connect('ds', { id: 'c4', netns: c4, ipv6: false, publish: p(9000, '::') }), 'ERR_INVALID_ARGUMENT', /ipv6: false/u);
    assert.equal(JSON.stringify([published(h), await host.listEndpoints()]), before, 'nothing changed');
    assert.deepEqual(
      ipJson(['link', 'show'], c4).map((l: any) => l.ifname),
      ['lo'],
    );
    // ipv6: false on a dual-stack network: no hostIp is IPv4 only.
    await host.connect('ds', { id: 'c4', netns: c4, ipv6: false, publish: p(9001) });
    assert.deepEqual(
      published(h)
        .filter((e) => e.endsWith('ep:c4'))
        .map((e) => e.split(' ')[0]),
      ['published_any'],
    );
  });

  it('host processes are seen by family: an IPv6-only socket leaves IPv4 free, 0.0.0.0 leaves IPv6 free, a dual-stack one takes both', async () => {
    await host.createNetwork({ name: 'ds', subnet: '172.53.0.0/24', subnet6: 'fd00:53::/64' });
    await listeners(h, [
      { port: 7001, host: '::', ipv6Only: true },
      { port: 7002, host: '0.0.0.0' },
      { port: 7003, host: '::' },
      { port: 7004, host: HOST6 },
    ]);
    const c = await makeNetns('s6l');
    const p = (hostPort: number, hostIp?: string) => [{ protocol: 'tcp' as const, hostPort, containerPort: 80, ...(hostIp !== undefined ? { hostIp } : {}) }];
    await rejects(
      host.connect('ds', { id: 'x', netns: c, publish: p(7001) }),
      'ERR_PORT_IN_USE',
      /\[::\]:7001 is held by a listening socket on the host \(\[::\]:7001\)/u,
    );
    await rejects(host.connect('ds', { id: 'x', netns: c, publish: p(7002, '0.0.0.0') }), 'ERR_PORT_IN_USE', /\(0\.0\.0\.0:7002\)/u);
    await rejects(host.connect('ds', { id: 'x', netns: c, publish: p(7003, '0.0.0.0') }), 'ERR_PORT_IN_USE', /\(\[::\]:7003\)/u);
    await rejects(host.connect('ds', { id: 'x', netns: c, publish: p(7003, '::') }), 'ERR_PORT_IN_USE');
    await rejects(host.connect('ds', { id: 'x', netns: c, publish: p(7004, '::') }), 'ERR_PORT_IN_USE', /\[2001:db8:98::1\]:7004/u);
    await host.connect('ds', { id: 'x', netns: c, publish: [...p(7001, '0.0.0.0'), ...p(7002, '::'), ...p(7004, '0.0.0.0')] });
    await echoServer(c, 'x', [80], []);
    assert.deepEqual(
      ask(
        ext,
        [
          { proto: 'tcp', addr: HOST, port: 7001 },
          { proto: 'tcp', addr: HOST6, port: 7002 },
          { proto: 'tcp', addr: HOST, port: 7004 },
        ],
        FIRST,
      ),
      [`x:80 ${PEER}`, `x:80 ${PEER6}`, `x:80 ${PEER}`],
    );
    // Host mode claims both families by default, and one when told.
    await rejects(host.connect('host', { id: 'web', ports: [{ port: 7002 }] }), 'ERR_PORT_IN_USE');
    await host.connect('host', { id: 'web', ports: [{ port: 7005 }, { port: 7006, hostIp: '::' }] });
    await rejects(host.connect('ds', { id: 'y', netns: await makeNetns('s6m'), publish: p(7005, '::') }), 'ERR_PORT_IN_USE', /endpoint web \(network host\)/u);
    await host.connect('ds', { id: 'y', netns: await makeNetns('s6n'), publish: p(7006, '0.0.0.0') });
  });

  it('isolation over IPv6: networks apart, icc: false, internal; nothing unpublished enters from outside', async () => {
    sh('ip', ['-n', ext, 'route', 'add', 'fd00:54::/64', 'via', HOST6]);
    await host.createNetwork({ name: 'a', subnet: '172.54.0.0/24', subnet6: 'fd00:54::/64' });
    await host.createNetwork({ name: 'b', subnet: '172.55.0.0/24', subnet6: 'fd00:55::/64' });
    await host.createNetwork({ name: 'quiet', subnet: '172.56.0.0/24', subnet6: 'fd00:56::/64', icc: false });
    await host.createNetwork({ name: 'vault', subnet: '172.57.0.0/24', subnet6: 'fd00:57::/64', internal: true });
    const [a1, a2, b1, q1, q2, i1] = (await Promise.all(['s6o', 's6p', 's6q', 's6r', 's6s', 's6t'].map((x) => makeNetns(x)))) as string[];
    await host.connect('a', { id: 'a1', netns: a1!, publish: [{ protocol: 'tcp', hostPort: 8080, containerPort: 80 }] });
    await host.connect('a', { id: 'a2', netns: a2! });
    await host.connect('b', { id: 'b1', netns: b1! });
    await host.connect('quiet', { id: 'q1', netns: q1! });
    await host.connect('quiet', { id: 'q2', netns: q2! });
    await host.connect('vault', { id: 'i1', netns: i1! });
    for (const [c, n] of [
      [a1, 'a1'],
      [q1, 'q1'],
    ] as const)
      await echoServer(c!, n, [80, 81], []);
    assert.equal(tcp(a2!, 'fd00:54::2', 81, FIRST), 'a1:81 fd00:54::3', 'one network talks inside over IPv6');
    assert.ok(failed(tcp(b1!, 'fd00:54::2', 81)), 'another network cannot reach it');
    assert.ok(failed(tcp(q2!, 'fd00:56::2', 80)), 'icc: false');
    assert.equal(tcp(q2!, PEER6, 9000, FIRST), `ext:9000 ${HOST6}`, 'icc: false still gets out');
    assert.ok(failed(tcp(i1!, PEER6, 9000)), 'internal: no way out');
    assert.equal(tcp(ext, HOST6, 8080, FIRST), `a1:80 ${PEER6}`, 'the published port is public');
    assert.ok(failed(tcp(ext, 'fd00:54::2', 81)), 'an unpublished port is not, though ext routes the subnet through the host');
  });

  it('disconnect, reconcile and gc handle the IPv6 elements: removed at once, rebuilt after a flush, dropped with a dead namespace', async () => {
    await host.createNetwork({ name: 'ds', subnet: '172.58.0.0/24', subnet6: 'fd00:58::/64' });
    const [c1, c2] = [await makeNetns('s6u'), await makeNetns('s6v')];
    await host.connect('ds', {
      id: 'c1',
      netns: c1,
      publish: [
        { protocol: 'tcp', hostPort: 8080, containerPort: 80 },
        { protocol: 'udp', hostIp: '::', hostPort: 5353, containerPort: 53 },
      ],
    });
    await echoServer(c1, 'c1', [80], [53]);
    const mine = (): string[] => published(h).filter((e) => e.endsWith(' ep:c1'));
    assert.deepEqual(mine(), [
      'published_any ["tcp",8080] -> ["172.58.0.2",80] ep:c1',
      'published_any6 ["tcp",8080] -> ["fd00:58::2",80] ep:c1',
      'published_any6 ["udp",5353] -> ["fd00:58::2",53] ep:c1',
    ]);
    // Reconcile after `nft flush ruleset`: rebuilt from the records, both families.
    assert.equal(tcp(ext, HOST6, 8080, FIRST), `c1:80 ${PEER6}`);
    sh('nft', ['flush', 'ruleset'], h);
    assert.ok(failed(tcp(ext, HOST6, 8080)), 'sanity: the flush unpublished it');
    const r = await host.reconcile();
    assert.equal(r.firewallRebuilt, true);
    assert.equal(mine().length, 3);
    assert.deepEqual(
      ask(ext, [
        { proto: 'tcp', addr: HOST6, port: 8080 },
        { proto: 'udp', addr: HOST6, port: 5353 },
        { proto: 'tcp', addr: HOST, port: 8080 },
      ]),
      [`c1:80 ${PEER6}`, `c1:53 ${PEER6}`, `c1:80 ${PEER}`],
    );
    // gc: the namespace goes, so do its elements and its claims of both families.
    sh('ip', ['netns', 'del', c1]);
    const g = await host.gc();
    assert.deepEqual(g.endpoints, ['ds/c1']);
    assert.deepEqual(mine(), []);
    // The ports are free again, IPv6 half included; disconnect removes the IPv6 elements at once.
    await host.connect('ds', {
      id: 'c2',
      netns: c2,
      publish: [
        { protocol: 'tcp', hostIp: '::', hostPort: 8080, containerPort: 80 },
        { protocol: 'udp', hostPort: 5353, containerPort: 53 },
      ],
    });
    await echoServer(c2, 'c2', [80], [53]);
    assert.equal(tcp(ext, HOST6, 8080, FIRST), `c2:80 ${PEER6}`);
    assert.equal(udp(ext, HOST6, 5353, 40000), `c2:53 ${PEER6}`);
    await host.disconnect('ds', 'c2');
    assert.deepEqual(published(h), []);
    assert.ok(failed(tcp(ext, HOST6, 8080)), 'unreachable as soon as disconnect returns');
    assert.ok(failed(udp(ext, HOST6, 5353, 40000)), 'the UDP flow too (its conntrack entry went with it)');
  });
});
