/**
 * The firewall (lib/firewall/) on dual-stack networks, against the kernel, with real traffic.
 * Oracles: `nft -j list ruleset`, `conntrack -L -f ipv6`, and TCP/UDP between namespaces the
 * test made with `ip` (the firewall is the only thing nsnet writes):
 *
 *   E (external peer) ex0 10.71.0.2, 2001:db8:71::2 ── hx 10.71.0.1 + .3, 2001:db8:71::1 + ::3 [H]
 *   H bridges:  app   172.40.0.0/24 fd00:40::/64       a1 .2/::2  a2 .3/::3
 *               other 172.41.0.0/24 fd00:41::/64       b1         (ipMasquerade: false)
 *               glob  172.42.0.0/24 2001:db8:42::/64   g1         (global subnet: routed)
 *               quiet 172.43.0.0/24 fd00:43::/64       q1  q2     (icc: false)
 *               vault 172.44.0.0/24 fd00:44::/64       i1         (internal)
 *
 * E routes 2001:db8:42::/64 (the routed network), fd00:40::/64 and fd00:44::/64 (to prove that
 * nothing unpublished enters, and that the internal network cannot get out) through H. Every container and E run an echo server answering
 * "<name>:<port> <peer address>" on TCP 80, 7000-7002 and UDP 53, both families.
 */
import * as assert from 'node:assert/strict';
import { Netns, NsnetError } from '../../lib/index';
import { Firewall, type FirewallEndpoint, type FirewallNetwork, type FirewallPort } from '../../lib/firewall/index';
import { makeNetns, registerCleanup, uniqueName, useSandbox } from '../helpers/sandbox';
import { conntrackList, nftJson, sh } from '../helpers/oracle';
import { ask, echoServer, failed, tcp, udp } from '../helpers/echo';

function ip(ns: string, ...args: string[]): void {
  sh('ip', ['-n', ns, ...args]);
}

const mine = (o: any): boolean => (o.family === 'inet' && o.table === 'nsnet') || (o.family === 'bridge' && o.table === 'nsnet_l2');

/** nft -j objects of one kind of nsnet's tables. */
function nftObjects(ns: string, kind: string): any[] {
  return (nftJson(ns).nftables as any[])
    .filter((o) => kind in o)
    .map((o) => o[kind])
    .filter(mine);
}

/** Elements of nsnet's sets and maps (nft -j), by set name. */
function nsnetElements(ns: string): Record<string, any[]> {
  const out: Record<string, any[]> = {};
  for (const kind of ['set', 'map']) for (const s of nftObjects(ns, kind)) out[s.name] = s.elem ?? [];
  return out;
}

const countElements = (ns: string): number => Object.values(nsnetElements(ns)).reduce((n, e) => n + e.length, 0);

async function rejectsCode(p: Promise<unknown>, code: string): Promise<NsnetError> {
  let err: unknown;
  await assert.rejects(p, (e: unknown) => {
    err = e;
    return true;
  });
  assert.ok(err instanceof NsnetError, `expected an NsnetError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  return err;
}

describe('firewall over IPv6 (kernel)', function () {
  useSandbox();
  this.timeout(300000);

  describe('elements of dual-stack networks (no traffic)', () => {
    it('a network with subnet6: hairpin6 and, for a ULA subnet, masq_subnets6; routed for a global one; sysctls include IPv6 forwarding', async () => {
      const H = await makeNetns('f6s');
      const fw = await Firewall.open({ netns: H });
      registerCleanup(() => fw.close());
      await fw.ensure();
      const app: FirewallNetwork = { name: 'app', bridge: 'br-app', subnet: '172.20.0.0/16', subnet6: 'fd00:20::99/64' };
      await fw.addNetwork(app);
      await fw.addNetwork({ name: 'glob', bridge: 'br-g', subnet: '172.21.0.0/16', subnet6: '2001:db8:21::/64' });
      await fw.addNetwork({ name: 'nat66', bridge: 'br-n', subnet: '172.22.0.0/16', subnet6: '2001:db8:22::/64', ipMasquerade6: true });
      await fw.addNetwork({ name: 'nomasq', bridge: 'br-m', subnet: '172.23.0.0/16', subnet6: 'fd00:23::/64', ipMasquerade: false });
      await fw.addNetwork({ name: 'vault', bridge: 'br-v', subnet: '172.24.0.0/16', subnet6: 'fd00:24::/64', internal: true });
      const el = nsnetElements(H);
      const six = (set: string) => (el[set] ?? []).map((e) => `${JSON.stringify(e.elem.val)} ${e.elem.comment}`).sort();
      assert.deepEqual(
        six('masq_subnets6'),
        ['{"prefix":{"addr":"2001:db8:22::","len":64}} net:nat66', '{"prefix":{"addr":"fd00:20::","len":64}} net:app'],
        'ULA by default, a global subnet only when asked, none with ipMasquerade false',
      );
      assert.deepEqual(
        six('hairpin6'),
        ['app', 'glob', 'nat66', 'nomasq']
          .map((n) => {
            const net = { app: ['fd00:20::', 'br-app'], glob: ['2001:db8:21::', 'br-g'], nat66: ['2001:db8:22::', 'br-n'], nomasq: ['fd00:23::', 'br-m'] }[n]!;
            return `{"concat":[{"prefix":{"addr":"${net[0]}","len":64}},"${net[1]}"]} net:${n}`;
          })
          .sort(),
      );
      assert.deepEqual(six('internal_subnets6'), ['{"prefix":{"addr":"fd00:24::","len":64}} net:vault']);
      assert.equal(nsnetElements(H).masq_subnets!.length, 3, 'IPv4 masquerade as before (app, glob, nat66)');

      // Overlap is checked per family; the two families never overlap each other.
      const e = await rejectsCode(fw.addNetwork({ name: 'b', bridge: 'br-b', subnet: '10.9.0.0/24', subnet6: 'fd00:20::/48' }), 'ERR_SUBNET_OVERLAP');
      assert.equal(e.details.network, 'app');
      await rejectsCode(fw.addNetwork({ name: 'b', bridge: 'br-b', subnet: '10.9.0.0/24', subnet6: 'fd00:24:0:0:1::/80' }), 'ERR_SUBNET_OVERLAP');
      await rejectsCode(fw.addNetwork({ name: 'b', bridge: 'br-b', subnet: '10.9.0.0/24', subnet6: '10.8.0.0/16' }), 'ERR_INVALID_CIDR');
      await rejectsCode(fw.addNetwork({ name: 'b', bridge: 'br-b', subnet: '10.9.0.0/24', ipMasquerade6: true }), 'ERR_INVALID_ARGUMENT');
      await rejectsCode(fw.publish('x', [{ protocol: 'tcp', hostPort: 80, containerPort: 80, containerIp6: 'fd00:24::7' }]), 'ERR_NETWORK_INTERNAL');

      // Removing IPv6 from a network (same name, no subnet6) replaces its elements.
      await fw.addNetwork({ ...app, subnet6: undefined } as FirewallNetwork);
      assert.equal(nsnetElements(H).hairpin6!.filter((x) => x.elem.comment === 'net:app').length, 0);

      assert.deepEqual(Firewall.sysctls(app), { 'net.ipv4.ip_forward': '1', 'net.ipv4.conf.br-app.route_localnet': '1', 'net.ipv6.conf.all.forwarding': '1' });
      assert.deepEqual(Firewall.sysctls({ ...app, subnet6: undefined } as FirewallNetwork), {
        'net.ipv4.ip_forward': '1',
        'net.ipv4.conf.br-app.route_localnet': '1',
      });
      assert.deepEqual(Firewall.sysctls({ ...app, internal: true }), {});
      for (const n of ['app', 'glob', 'nat66', 'nomasq', 'vault']) await fw.removeNetwork(n);
      assert.equal(countElements(H), 0);
    });

    it('ports: an omitted hostIp claims both families in one transaction; 0.0.0.0 and :: are distinct claims; ::1 is a coded error', async () => {
      const H = await makeNetns('f6p');
      const fw = await Firewall.open({ netns: H });
      registerCleanup(() => fw.close());
      await fw.ensure();
      await fw.addNetwork({ name: 'app', bridge: 'br-app', subnet: '172.20.0.0/16', subnet6: 'fd00:20::/64' });
      const t = { containerIp: '172.20.0.2', containerIp6: 'fd00:20::2' };
      const u = { containerIp: '172.20.0.3', containerIp6: 'fd00:20::3' };
      const p = (hostPort: number, hostIp?: string, to = t): FirewallPort[] => [
        { protocol: 'tcp', hostPort, containerPort: 80, ...to, ...(hostIp ? { hostIp } : {}) },
      ];

      await fw.publish('c1', p(8080));
      const el = nsnetElements(H);
      assert.deepEqual(el.published_any, [[{ elem: { val: { concat: ['tcp', 8080] }, comment: 'ep:c1' } }, { concat: ['172.20.0.2', 80] }]]);
      assert.deepEqual(el.published_any6, [[{ elem: { val: { concat: ['tcp', 8080] }, comment: 'ep:c1' } }, { concat: ['fd00:20::2', 80] }]]);
      // Either family taken: the whole request is refused and nothing is written.
      await fw.publish('c2', p(8081, '::', u));
      const both = await rejectsCode(fw.publish('c1', p(8081)), 'ERR_PORT_IN_USE');
      assert.deepEqual(both.details, { protocol: 'tcp', family: 6, hostIp: '::', hostPort: 8081, holder: 'ep:c2', endpoint: 'c2' });
      assert.match(both.message, /tcp port 8081 on \[::\] is already published by endpoint c2/);
      assert.equal(nsnetElements(H).published_any!.length, 1, 'the IPv4 half was not written');
      await fw.publish('c1', p(8081, '0.0.0.0')); // the other family is free
      // One IPv6 address vs every IPv6 address, through the IPv6 index.
      await fw.publish('c3', p(8082, '2001:db8::1', u));
      const one = await rejectsCode(fw.publish('c1', p(8082, '::')), 'ERR_PORT_IN_USE');
      assert.match(one.message, /published on \[2001:db8::1\]/);
      await fw.publish('c1', p(8082, '0.0.0.0'));
      assert.deepEqual(nsnetElements(H).hostip_ports6, [{ concat: ['tcp', 8082] }]);
      assert.deepEqual(nsnetElements(H).hostip_ports, []);
      await fw.unpublish('c3');
      assert.deepEqual(nsnetElements(H).hostip_ports6, [], 'the IPv6 index follows its last holder');

      // Bad input changes nothing.
      const before = countElements(H);
      const lo = await rejectsCode(fw.publish('c9', p(9000, '::1')), 'ERR_INVALID_HOST_IP');
      assert.match(lo.message, /cannot DNAT to or from ::1/);
      await rejectsCode(fw.publish('c9', p(9000, 'fe80::1')), 'ERR_INVALID_HOST_IP');
      await rejectsCode(fw.publish('c9', p(9000, 'ff02::1')), 'ERR_INVALID_HOST_IP');
      await rejectsCode(fw.publish('c9', p(9000, '::ffff:10.0.0.1')), 'ERR_INVALID_HOST_IP');
      await rejectsCode(fw.publish('c9', p(9000, '::', { containerIp: '172.20.0.2' } as never)), 'ERR_INVALID_ARGUMENT');
      await rejectsCode(fw.publish('c9', [{ protocol: 'tcp', hostPort: 9000, containerPort: 80, containerIp6: '172.20.0.2' }]), 'ERR_INVALID_IP');
      await rejectsCode(fw.publish('c9', [...p(9000), ...p(9000, '::', u)]), 'ERR_INVALID_ARGUMENT'); // [::]:9000 twice in one request
      assert.throws(
        () => Firewall.checkPorts(p(9000, '::1')),
        (x: any) => x.code === 'ERR_INVALID_HOST_IP',
      );
      assert.deepEqual(Firewall.checkPorts([{ protocol: 'udp', hostPort: 53, containerPort: 53 }], { ipv4: '172.20.0.2', ipv6: 'fd00:20::2' }), [
        { family: 4, hostIp: '0.0.0.0', protocol: 'udp', hostPort: 53, containerIp: '172.20.0.2', containerPort: 53 },
        { family: 6, hostIp: '::', protocol: 'udp', hostPort: 53, containerIp: 'fd00:20::2', containerPort: 53 },
      ]);
      assert.equal(countElements(H), before);

      // listOwned and removeOwner know the IPv6 elements.
      const owned = await fw.listOwned();
      assert.deepEqual(
        owned
          .get('ep:c1')!
          .map((e) => `${e.set} ${JSON.stringify(e.key)} ${JSON.stringify(e.value)}`)
          .sort(),
        [
          'published_any ["tcp",8080] ["172.20.0.2",80]',
          'published_any ["tcp",8081] ["172.20.0.2",80]',
          'published_any ["tcp",8082] ["172.20.0.2",80]',
          'published_any6 ["tcp",8080] ["fd00:20::2",80]',
        ],
      );
      assert.equal(await fw.removeOwner('ep:c1'), 4);
      // Unpublishing with an omitted hostIp removes both families' claims the owner holds.
      await fw.unpublish('c2', [{ protocol: 'tcp', hostPort: 8081, containerPort: 80 }]);
      await fw.removeNetwork('app');
      assert.equal(countElements(H), 0);
    });
  });

  describe('real traffic: a host, an external peer, five dual-stack networks', () => {
    let H: string, E: string;
    let fw: Firewall;
    const c: Record<string, string> = {};
    const nets: Record<string, FirewallNetwork> = {};
    const eps: Record<string, FirewallEndpoint> = {};
    const HOST = '10.71.0.1';
    const HOST6 = '2001:db8:71::1';
    const HOST6B = '2001:db8:71::3';
    const PEER = '10.71.0.2';
    const PEER6 = '2001:db8:71::2';
    const state = () => ({ networks: Object.values(nets), endpoints: Object.values(eps) });

    before(async () => {
      H = await makeNetns('f6h');
      E = await makeNetns('f6e');
      ip(H, 'link', 'add', 'hx', 'type', 'veth', 'peer', 'name', 'ex0', 'netns', E);
      for (const a of [`${HOST}/24`, '10.71.0.3/24']) ip(H, 'addr', 'add', a, 'dev', 'hx');
      for (const a of [`${HOST6}/64`, `${HOST6B}/64`]) ip(H, 'addr', 'add', a, 'dev', 'hx', 'nodad');
      ip(E, 'addr', 'add', `${PEER}/24`, 'dev', 'ex0');
      ip(E, 'addr', 'add', `${PEER6}/64`, 'dev', 'ex0', 'nodad');
      ip(H, 'link', 'set', 'hx', 'up');
      ip(E, 'link', 'set', 'ex0', 'up');
      ip(E, 'route', 'add', '2001:db8:42::/64', 'via', HOST6);
      ip(E, 'route', 'add', 'fd00:40::/64', 'via', HOST6);
      ip(E, 'route', 'add', 'fd00:44::/64', 'via', HOST6);
      ip(E, 'route', 'add', '172.40.0.0/24', 'via', HOST);

      fw = await Firewall.open({ netns: H });
      registerCleanup(() => fw.close(), 'close the firewall');
      assert.equal(await fw.ensure(), 'created');
      const specs: [string, number, string, Partial<FirewallNetwork>, string[]][] = [
        ['app', 40, 'fd00:40::', {}, ['a1', 'a2']],
        ['other', 41, 'fd00:41::', { ipMasquerade: false }, ['b1']],
        ['glob', 42, '2001:db8:42::', {}, ['g1']],
        ['quiet', 43, 'fd00:43::', { icc: false }, ['q1', 'q2']],
        ['vault', 44, 'fd00:44::', { internal: true }, ['i1']],
      ];
      for (const [name, octet, prefix6, opts, members] of specs) {
        const bridge = uniqueName('f6b');
        ip(H, 'link', 'add', bridge, 'type', 'bridge');
        ip(H, 'addr', 'add', `172.${octet}.0.1/24`, 'dev', bridge);
        ip(H, 'addr', 'add', `${prefix6}1/64`, 'dev', bridge, 'nodad');
        ip(H, 'link', 'set', bridge, 'up');
        const net: FirewallNetwork = { name, bridge, subnet: `172.${octet}.0.0/24`, subnet6: `${prefix6}/64`, ...opts };
        nets[name] = net;
        for (const [key, value] of Object.entries(Firewall.sysctls(net))) assert.equal(await Netns.sysctl(H, key, value), value);
        await fw.addNetwork(net);
        for (const [i, m] of members.entries()) {
          const ns = await makeNetns(`f6${m}`);
          c[m] = ns;
          const hostIfname = uniqueName('f6v');
          const addr = `172.${octet}.0.${i + 2}`;
          const addr6 = `${prefix6}${i + 2}`;
          ip(H, 'link', 'add', hostIfname, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
          ip(H, 'link', 'set', hostIfname, 'master', bridge, 'up');
          ip(H, 'link', 'set', hostIfname, 'type', 'bridge_slave', 'hairpin', 'on');
          ip(ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
          ip(ns, 'addr', 'add', `${addr6}/64`, 'dev', 'eth0', 'nodad');
          ip(ns, 'link', 'set', 'eth0', 'up');
          ip(ns, 'route', 'add', 'default', 'via', `172.${octet}.0.1`);
          ip(ns, '-6', 'route', 'add', 'default', 'via', `${prefix6}1`, 'dev', 'eth0');
          eps[m] = { id: m, bridge, hostIfname, ipv4: addr, ipv6: addr6, ports: [] };
          await fw.connectEndpoint(eps[m]!);
          await echoServer(ns, m, [80, 7000, 7001, 7002], [53]);
        }
      }
      await echoServer(E, 'E', [80], [53]);
    });

    /** Deletes one rule of nsnet's forward chain by its comment (ensure() puts it back). */
    function deleteForwardRule(comment: string): void {
      const r = nftObjects(H, 'rule').find((x) => x.family === 'inet' && x.chain === 'forward' && x.comment === `nsnet: ${comment}`);
      assert.ok(r, comment);
      sh('nft', ['delete', 'rule', 'inet', 'nsnet', 'forward', 'handle', String(r.handle)], H);
    }

    /** Publishes for the test (targets: the endpoint's addresses), unpublished afterwards (even on failure). */
    async function publish(id: string, ports: FirewallPort[]): Promise<void> {
      await fw.publish(
        id,
        ports.map((p) => ({ containerIp: eps[id]!.ipv4, containerIp6: eps[id]!.ipv6!, ...p })),
      );
      registerCleanup(() => fw.unpublish(id, ports), `unpublish ${id}`);
    }

    it("-p 8080:80 on a dual-stack network answers on the host's IPv4 and IPv6 addresses, TCP and UDP; the container sees the peer", async () => {
      assert.ok(failed(tcp(E, HOST6, 8080)), 'sanity: nothing answers before the port is published');
      await publish('a1', [
        { protocol: 'tcp', hostPort: 8080, containerPort: 80 },
        { protocol: 'udp', hostPort: 5353, containerPort: 53 },
      ]);
      assert.deepEqual(
        ask(E, [
          { proto: 'tcp', addr: HOST6, port: 8080 },
          { proto: 'udp', addr: HOST6, port: 5353 },
          { proto: 'tcp', addr: HOST6B, port: 8080 },
          { proto: 'tcp', addr: HOST, port: 8080 },
          { proto: 'udp', addr: HOST, port: 5353 },
        ]),
        [`a1:80 ${PEER6}`, `a1:53 ${PEER6}`, `a1:80 ${PEER6}`, `a1:80 ${PEER}`, `a1:53 ${PEER}`],
      );
    });

    it('a range over IPv6 maps port by port; the host reaches it through its own IPv6 address (output hook), not through ::1; 127.0.0.1 works', async () => {
      await publish('a2', [{ protocol: 'tcp', hostPort: 9000, hostPortEnd: 9002, containerPort: 7000 }]);
      assert.deepEqual(
        ask(
          E,
          [9000, 9001, 9002, 9003].map((port) => ({ proto: 'tcp' as const, addr: HOST6, port })),
        ),
        [`a2:7000 ${PEER6}`, `a2:7001 ${PEER6}`, `a2:7002 ${PEER6}`, 'error:ECONNREFUSED'],
      );
      assert.equal(tcp(H, HOST6, 9001), `a2:7001 ${HOST6}`);
      assert.equal(tcp(H, 'fd00:40::1', 9002), 'a2:7002 fd00:40::1', 'a gateway address is a host address too');
      assert.equal(tcp(H, '::1', 9000), 'error:ECONNREFUSED', '::1 is not DNATed (the kernel cannot): refused at once, not a hang');
      assert.equal(tcp(H, '127.0.0.1', 9000), 'a2:7000 172.40.0.1', 'every address includes 127.0.0.1');
    });

    it("hairpin over IPv6: a container reaches its own and its peer's published port through a host IPv6 address, with br_netfilter or without", async () => {
      const key = 'net.bridge.bridge-nf-call-ip6tables';
      const orig = await Netns.sysctl(H, key);
      registerCleanup(() => Netns.sysctl(H, key, orig), `restore ${key}`);
      await publish('a1', [{ protocol: 'tcp', hostPort: 8080, containerPort: 80 }]);
      await publish('q2', [{ protocol: 'tcp', hostPort: 8082, containerPort: 80 }]);
      for (const mode of ['1', '0']) {
        assert.equal(await Netns.sysctl(H, key, mode), mode);
        const why = `bridge-nf-call-ip6tables=${mode}`;
        assert.deepEqual(
          ask(c.a1!, [
            { proto: 'tcp', addr: HOST6, port: 8080 },
            { proto: 'tcp', addr: 'fd00:40::3', port: 80 },
            { proto: 'tcp', addr: 'fd00:41::2', port: 80 },
          ]),
          ['a1:80 fd00:40::1', 'a2:80 fd00:40::2', 'timeout'],
          why,
        );
        assert.equal(tcp(c.a2!, HOST6, 8080), 'a1:80 fd00:40::1', `its peer (${why})`);
        assert.equal(tcp(c.b1!, HOST6, 8080), 'a1:80 fd00:41::2', `another network: published ports are public (${why})`);
        assert.deepEqual(
          ask(c.q1!, [
            { proto: 'tcp', addr: HOST6, port: 8082 },
            { proto: 'tcp', addr: 'fd00:43::3', port: 80 },
          ]),
          ['q2:80 fd00:43::1', 'timeout'],
          why,
        );
        assert.equal(tcp(c.q2!, HOST6, 8082), 'q2:80 fd00:43::1', `a no-ICC container reaches its own published port (${why})`);
      }
    });

    it("egress over IPv6: the peer sees the host's address (ULA, masqueraded), or the container's own (global subnet, routed); ipMasquerade false turns IPv6 off too", async () => {
      // The masquerade address is the host's source address for E: of hx's two, the kernel picks
      // the one with the longest prefix in common with E's (RFC 6724 rule 8): ::3.
      assert.deepEqual(
        ask(c.a1!, [
          { proto: 'tcp', addr: PEER6, port: 80 },
          { proto: 'udp', addr: PEER6, port: 53 },
          { proto: 'tcp', addr: PEER, port: 80 },
        ]),
        [`E:80 ${HOST6B}`, `E:53 ${HOST6B}`, `E:80 ${HOST}`],
      );
      assert.equal(tcp(c.q1!, PEER6, 80), `E:80 ${HOST6B}`);
      assert.equal(tcp(c.g1!, PEER6, 80), 'E:80 2001:db8:42::2', 'routed: E routes the global subnet back through the host');
      assert.ok(failed(tcp(c.b1!, PEER6, 80)), 'network "other": no masquerade, and E has no route back to fd00:41::/64');
      // Sanity: IPv6 forwarding in the host is what egress rides on.
      assert.equal(await Netns.sysctl(H, 'net.ipv6.conf.all.forwarding', '0'), '0');
      registerCleanup(() => Netns.sysctl(H, 'net.ipv6.conf.all.forwarding', '1'), 'IPv6 forwarding back on');
      assert.ok(failed(tcp(c.a1!, PEER6, 80)), 'sanity: without forwarding, no IPv6 egress');
      assert.equal(await Netns.sysctl(H, 'net.ipv6.conf.all.forwarding', '1'), '1');
      assert.equal(tcp(c.a1!, PEER6, 80), `E:80 ${HOST6B}`);
    });

    it('isolation over IPv6: one network talks inside; two networks cannot; the outside cannot enter, a routed global network included', async () => {
      assert.deepEqual(
        ask(c.a1!, [
          { proto: 'tcp', addr: 'fd00:40::3', port: 80 },
          { proto: 'tcp', addr: 'fd00:41::2', port: 80 },
          { proto: 'tcp', addr: 'fd00:43::2', port: 80 },
          { proto: 'tcp', addr: '2001:db8:42::2', port: 80 },
        ]),
        ['a2:80 fd00:40::2', 'timeout', 'timeout', 'timeout'],
      );
      assert.ok(failed(tcp(c.b1!, 'fd00:40::2', 80)));
      assert.ok(failed(tcp(c.g1!, 'fd00:40::2', 80)));
      assert.deepEqual(
        ask(E, [
          { proto: 'tcp', addr: 'fd00:40::2', port: 80 },
          { proto: 'tcp', addr: '2001:db8:42::2', port: 80 },
          { proto: 'udp', addr: '2001:db8:42::2', port: 53 },
        ]),
        ['timeout', 'timeout', 'timeout'],
        'E routes both through the host, but nothing unpublished enters',
      );
      // Sanity: it is the isolation rule that stops them.
      deleteForwardRule('isolation: nothing else enters a network');
      assert.deepEqual(
        ask(E, [
          { proto: 'tcp', addr: 'fd00:40::2', port: 80 },
          { proto: 'tcp', addr: '2001:db8:42::2', port: 80 },
        ]),
        [`a1:80 ${PEER6}`, `g1:80 ${PEER6}`],
      );
      assert.equal(tcp(c.a1!, 'fd00:41::2', 80), 'b1:80 fd00:40::2');
      assert.equal(await fw.ensure(), 'repaired');
      assert.ok(failed(tcp(E, 'fd00:40::2', 80)));
    });

    it('icc: false over IPv6 — two containers of the network cannot talk, yet reach the outside and published ports', async () => {
      assert.ok(failed(tcp(c.q1!, 'fd00:43::3', 80)));
      assert.ok(failed(tcp(c.q2!, 'fd00:43::2', 80)));
      await publish('q2', [{ protocol: 'tcp', hostPort: 8082, containerPort: 80 }]);
      assert.equal(tcp(c.q1!, HOST6, 8082), 'q2:80 fd00:43::1');
      // Sanity: it is the firewall's doing.
      await fw.disconnectEndpoint({ ...eps.q1!, ports: [] });
      await fw.disconnectEndpoint({ ...eps.q2!, ports: [] });
      registerCleanup(async () => {
        await fw.connectEndpoint(eps.q1!);
        await fw.connectEndpoint(eps.q2!);
      }, 'reconnect q1 and q2');
      await fw.addNetwork({ ...nets.quiet!, icc: true });
      assert.equal(tcp(c.q1!, 'fd00:43::3', 80), 'q2:80 fd00:43::2', 'sanity: with icc they talk');
      await fw.addNetwork(nets.quiet!);
      await fw.connectEndpoint(eps.q1!);
      await fw.connectEndpoint(eps.q2!);
      assert.ok(failed(tcp(c.q1!, 'fd00:43::3', 80)));
    });

    it('internal network over IPv6: reaches nothing outside it, is reached by nothing, cannot publish', async () => {
      assert.deepEqual(
        ask(c.i1!, [
          { proto: 'tcp', addr: PEER6, port: 80 },
          { proto: 'tcp', addr: 'fd00:40::2', port: 80 },
          { proto: 'udp', addr: PEER6, port: 53 },
        ]),
        ['timeout', 'timeout', 'timeout'],
      );
      assert.ok(failed(tcp(c.a1!, 'fd00:44::2', 80)));
      // Sanity: E routes fd00:44::/64 through the host; only the internal rule keeps i1 in.
      deleteForwardRule('out of an internal network');
      assert.equal(tcp(c.i1!, PEER6, 80), 'E:80 fd00:44::2');
      assert.equal(await fw.ensure(), 'repaired');
      assert.ok(failed(tcp(c.i1!, PEER6, 80)));
      const err = await rejectsCode(
        fw.publish('i1', [{ protocol: 'tcp', hostIp: '::', hostPort: 8086, containerPort: 80, containerIp6: 'fd00:44::2' }]),
        'ERR_NETWORK_INTERNAL',
      );
      assert.equal(err.details.network, 'vault');
    });

    it('one IPv6 host address, [::] and 0.0.0.0: each answers only where published; the two families can go to two containers', async () => {
      await publish('a1', [{ protocol: 'tcp', hostIp: HOST6B, hostPort: 8083, containerPort: 80 }]);
      assert.deepEqual(
        ask(E, [
          { proto: 'tcp', addr: HOST6B, port: 8083 },
          { proto: 'tcp', addr: HOST6, port: 8083 },
          { proto: 'tcp', addr: HOST, port: 8083 },
        ]),
        [`a1:80 ${PEER6}`, 'error:ECONNREFUSED', 'error:ECONNREFUSED'],
      );
      await publish('a2', [{ protocol: 'tcp', hostIp: HOST6, hostPort: 8083, containerPort: 80 }]);
      assert.equal(tcp(E, HOST6, 8083), `a2:80 ${PEER6}`);
      assert.equal(tcp(H, HOST6B, 8083), `a1:80 ${HOST6B}`, 'from the host too');

      await publish('a1', [{ protocol: 'tcp', hostIp: '::', hostPort: 8084, containerPort: 80 }]);
      await publish('a2', [{ protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 8084, containerPort: 80 }]);
      assert.deepEqual(
        ask(E, [
          { proto: 'tcp', addr: HOST6, port: 8084 },
          { proto: 'tcp', addr: HOST, port: 8084 },
        ]),
        [`a1:80 ${PEER6}`, `a2:80 ${PEER}`],
      );
      await rejectsCode(
        fw.publish('a1', [{ protocol: 'tcp', hostPort: 8084, containerPort: 80, containerIp: eps.a1!.ipv4, containerIp6: eps.a1!.ipv6! }]),
        'ERR_PORT_IN_USE',
      );
      assert.deepEqual(
        ask(E, [
          { proto: 'tcp', addr: HOST6, port: 8084 },
          { proto: 'tcp', addr: HOST, port: 8084 },
        ]),
        [`a1:80 ${PEER6}`, `a2:80 ${PEER}`],
        'unchanged',
      );
    });

    it('conntrack oracle: unpublishing or re-pointing an IPv6 UDP port deletes its IPv6 entries (and only those): the same flow reaches the new container at once', async () => {
      const flow6 = (): string => udp(E, HOST6, 5300, 40000);
      const flow4 = (): string => udp(E, HOST, 5300, 40001);
      const entries = (f: 'ipv4' | 'ipv6'): string[] => conntrackList(H, ['-f', f, '-p', 'udp', '--orig-port-dst', '5300']);
      await fw.publish('a1', [{ protocol: 'udp', hostIp: '::', hostPort: 5300, containerPort: 53, containerIp6: 'fd00:40::2' }]);
      await fw.publish('a2', [{ protocol: 'udp', hostIp: '0.0.0.0', hostPort: 5300, containerPort: 53, containerIp: '172.40.0.3' }]);
      registerCleanup(async () => {
        await fw.unpublish('a1', [{ protocol: 'udp', hostPort: 5300, containerPort: 53 }]);
        await fw.unpublish('a2', [{ protocol: 'udp', hostPort: 5300, containerPort: 53 }]);
      });
      assert.equal(flow6(), `a1:53 ${PEER6}`);
      assert.equal(flow4(), `a2:53 ${PEER}`);
      assert.equal(entries('ipv6').length, 1);
      assert.equal(entries('ipv4').length, 1);
      // Sanity: re-pointing the element behind the firewall's back does not move the flow.
      const repoint = (target: string): void => {
        sh('nft', ['delete', 'element', 'inet', 'nsnet', 'published_any6', '{ udp . 5300 }'], H);
        sh('nft', ['add', 'element', 'inet', 'nsnet', 'published_any6', `{ udp . 5300 comment "ep:a1" : ${target} . 53 }`], H);
      };
      repoint('fd00:40::3');
      assert.equal(flow6(), `a1:53 ${PEER6}`, 'sanity: the conntrack entry keeps the old target');
      repoint('fd00:40::2');

      await fw.unpublish('a1', [{ protocol: 'udp', hostIp: '::', hostPort: 5300, containerPort: 53 }]);
      assert.deepEqual(entries('ipv6'), [], 'unpublish deleted the IPv6 entries of host port 5300');
      assert.equal(entries('ipv4').length, 1, "the IPv4 flow to a2's claim of the same port is left alone");
      assert.ok(failed(flow6()), 'nothing answers while unpublished');
      await fw.publish('a2', [{ protocol: 'udp', hostIp: '::', hostPort: 5300, containerPort: 53, containerIp6: 'fd00:40::3' }]);
      assert.equal(flow6(), `a2:53 ${PEER6}`, 'the same flow reaches the new container at once');
      assert.equal(flow4(), `a2:53 ${PEER}`);
      await fw.unpublish('a2');
      assert.deepEqual(entries('ipv6'), []);
      assert.deepEqual(entries('ipv4'), []);
    });

    it('the rule count is the same with 1, 1,000 and 10,000 published ports of mixed families; the last ones answer; all go away', async () => {
      const rules = (): number => nftObjects(H, 'rule').length;
      const rules0 = rules();
      const elements0 = countElements(H);
      // 10 endpoints x 1,000 host ports: a third on both families (2 elements), a third IPv6
      // only, a third IPv4 only; every fifth of the IPv6-only ones on one IPv6 address.
      const ports = (k: number): FirewallPort[] =>
        Array.from({ length: 1000 }, (_, i) => {
          const n = k * 1000 + i;
          const hostIp = n % 3 === 0 ? undefined : n % 3 === 1 ? (n % 5 === 0 ? HOST6B : '::') : '0.0.0.0';
          return {
            protocol: n % 2 ? 'udp' : 'tcp',
            hostPort: 30000 + n,
            containerPort: n % 2 ? 53 : 80,
            containerIp: '172.40.0.2',
            containerIp6: 'fd00:40::3',
            ...(hostIp ? { hostIp } : {}),
          };
        });
      const total = (k: number): number => ports(k).reduce((s, p) => s + (p.hostIp === undefined ? 2 : 1), 0);
      registerCleanup(async () => {
        for (let k = 0; k < 10; k++) await fw.unpublish(`bulk-${k}`);
      }, 'unpublish the bulk ports');
      await fw.publish('bulk-0', ports(0).slice(0, 1));
      assert.equal(rules(), rules0, '1 port');
      await fw.publish('bulk-0', ports(0));
      assert.equal(rules(), rules0, '1,000 ports');
      for (let k = 1; k < 10; k++) await fw.publish(`bulk-${k}`, ports(k));
      assert.equal(rules(), rules0, '10,000 ports');
      let want = 0;
      for (let k = 0; k < 10; k++) want += total(k);
      const index6 = new Set(
        Array.from({ length: 10000 }, (_, n) => n)
          .filter((n) => n % 3 === 1 && n % 5 === 0)
          .map((n) => `${n % 2 ? 'udp' : 'tcp'} ${30000 + n}`),
      ).size;
      assert.equal(countElements(H), elements0 + want + index6, 'one element per family and port (plus the IPv6 index)');
      // 39999: n = 9999 (both, udp); 39998: n = 9998 (IPv4 only, tcp); 39997: n = 9997 (IPv6 only, udp);
      // 39990: n = 9990 (both, tcp); 39970: n = 9970 (IPv6 only on HOST6B, tcp)
      assert.deepEqual(
        ask(E, [
          { proto: 'udp', addr: HOST6, port: 39999 },
          { proto: 'udp', addr: HOST, port: 39999 },
          { proto: 'tcp', addr: HOST, port: 39998 },
          { proto: 'tcp', addr: HOST6, port: 39998 },
          { proto: 'udp', addr: HOST6, port: 39997 },
          { proto: 'tcp', addr: HOST6, port: 39990 },
          { proto: 'tcp', addr: HOST6B, port: 39970 },
          { proto: 'tcp', addr: HOST6, port: 39970 },
        ]),
        [`a2:53 ${PEER6}`, `a1:53 ${PEER}`, `a1:80 ${PEER}`, 'error:ECONNREFUSED', `a2:53 ${PEER6}`, `a2:80 ${PEER6}`, `a2:80 ${PEER6}`, 'error:ECONNREFUSED'],
      );
      for (let k = 0; k < 10; k++) await fw.unpublish(`bulk-${k}`);
      assert.equal(rules(), rules0);
      assert.equal(countElements(H), elements0);
    });

    it('nft flush ruleset: rebuild() from the desired state restores the IPv6 elements and traffic', async () => {
      eps.a1!.ports = [{ protocol: 'tcp', hostPort: 8080, containerPort: 80 }];
      registerCleanup(async () => {
        eps.a1!.ports = [];
        await fw.unpublish('a1');
      });
      await fw.connectEndpoint(eps.a1!);
      assert.deepEqual(
        ask(E, [
          { proto: 'tcp', addr: HOST6, port: 8080 },
          { proto: 'tcp', addr: HOST, port: 8080 },
        ]),
        [`a1:80 ${PEER6}`, `a1:80 ${PEER}`],
      );
      const before = nsnetElements(H);
      assert.equal(before.published_any6!.length, 1);
      sh('nft', ['flush', 'ruleset'], H);
      assert.ok(failed(tcp(E, HOST6, 8080)));
      await fw.rebuild(state());
      assert.equal(await fw.isIntact(), true);
      assert.deepEqual(nsnetElements(H), before);
      assert.deepEqual(
        ask(E, [
          { proto: 'tcp', addr: HOST6, port: 8080 },
          { proto: 'tcp', addr: HOST, port: 8080 },
        ]),
        [`a1:80 ${PEER6}`, `a1:80 ${PEER}`],
      );
      assert.equal(tcp(c.a1!, PEER6, 80), `E:80 ${HOST6B}`, 'IPv6 masquerade is back');
      assert.ok(failed(tcp(c.a1!, 'fd00:41::2', 80)), 'IPv6 isolation is back');
      await rejectsCode(
        fw.rebuild({
          networks: Object.values(nets),
          endpoints: [eps.a1!, { ...eps.a2!, ports: [{ protocol: 'tcp', hostIp: '::', hostPort: 8080, containerPort: 80 }] }],
        }),
        'ERR_PORT_IN_USE',
      );
    });

    after(async () => {
      if (!fw || !H) return;
      for (const ep of Object.values(eps)) await fw.disconnectEndpoint(ep);
      for (const name of Object.keys(nets)) await fw.removeNetwork(name);
      assert.deepEqual(
        Object.entries(nsnetElements(H)).filter(([, e]) => e.length),
        [],
      );
    });
  });
});
