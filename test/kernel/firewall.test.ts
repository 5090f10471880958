/**
 * The bridge-mode firewall (lib/firewall/) against the kernel. Oracles: `nft -j list ruleset`
 * and `nft list ruleset` for what is installed, `conntrack -L` for flow state, and real TCP and
 * UDP traffic between namespaces the test made:
 *
 *   E (external peer) ex0 10.70.0.2 ── hx 10.70.0.1 + 10.70.0.3 [H: the "host", ip_forward on]
 *   H bridges:  A "app"   172.30.0.1/24  a1 .2  a2 .3
 *               B "other" 172.31.0.1/24  b1 .2          (ipMasquerade: false)
 *               Q "quiet" 172.32.0.1/24  q1 .2  q2 .3   (icc: false)
 *               I "vault" 172.33.0.1/24  i1 .2          (internal)
 *
 * The world is made with `ip` (independent of the code under test); the firewall is the only
 * thing nsnet writes. Every container and E run one echo server answering "<name>:<port>
 * <peer address>" on TCP 80, 7000-7002 and UDP 53.
 */
import * as assert from 'node:assert/strict';
import { Netns, NfTables, NsnetError } from '../../lib/index';
import { Firewall, type FirewallEndpoint, type FirewallNetwork, type FirewallPort } from '../../lib/firewall/index';
import { makeNetns, registerCleanup, uniqueName, useSandbox } from '../helpers/sandbox';
import { conntrackList, nftJson, sh } from '../helpers/oracle';
import { ask, echoServer, failed, tcp, udp } from '../helpers/echo';

// ------------------------------------------------------------------------------------ helpers

function ip(ns: string, ...args: string[]): void {
  sh('ip', ['-n', ns, ...args]);
}

/** nft -j objects of one kind in a namespace. */
function nftObjects(ns: string, kind: string): any[] {
  return (nftJson(ns).nftables as any[]).filter((o) => kind in o).map((o) => o[kind]);
}

/** Rules of nsnet's two tables (nft -j). */
function nsnetRules(ns: string): any[] {
  return nftObjects(ns, 'rule').filter((r) => (r.family === 'inet' && r.table === 'nsnet') || (r.family === 'bridge' && r.table === 'nsnet_l2'));
}

/** Elements of nsnet's sets and maps (nft -j), by set name. */
function nsnetElements(ns: string): Record<string, any[]> {
  const out: Record<string, any[]> = {};
  for (const kind of ['set', 'map']) {
    for (const s of nftObjects(ns, kind)) {
      if (!((s.family === 'inet' && s.table === 'nsnet') || (s.family === 'bridge' && s.table === 'nsnet_l2'))) continue;
      out[s.name] = s.elem ?? [];
    }
  }
  return out;
}

const countElements = (ns: string): number => Object.values(nsnetElements(ns)).reduce((n, e) => n + e.length, 0);

async function openFirewall(ns: string): Promise<Firewall> {
  const fw = await Firewall.open({ netns: ns });
  registerCleanup(() => fw.close(), `close firewall in ${ns}`);
  return fw;
}

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

// ====================================================================================== tests

describe('firewall (kernel)', function () {
  useSandbox();
  this.timeout(180000);

  describe('the skeleton and element operations (no traffic)', () => {
    it('ensure() writes both tables once; nft lists exactly the layout; a second ensure() changes nothing', async () => {
      const H = await makeNetns('fws');
      const fw = await openFirewall(H);
      const nft = await NfTables.open({ netns: H });
      registerCleanup(() => nft.close());
      assert.deepEqual(await fw.check(), { intact: false, absent: true, problems: ['inet nsnet: table missing', 'bridge nsnet_l2: table missing'] });
      assert.equal(await fw.ensure(), 'created');
      const gen = await nft.generation();
      assert.equal(await fw.ensure(), 'unchanged');
      assert.equal(await nft.generation(), gen, 'the second ensure() sent no transaction');
      assert.deepEqual(await fw.check(), { intact: true, absent: false, problems: [] });

      const tables = nftObjects(H, 'table').map((t) => `${t.family} ${t.name}`);
      assert.deepEqual(tables, ['inet nsnet', 'bridge nsnet_l2']);
      const chains = nftObjects(H, 'chain').map((c) => `${c.family} ${c.name} ${c.type} ${c.hook} ${c.prio} ${c.policy}`);
      assert.deepEqual(chains, [
        'inet guard filter prerouting -300 accept',
        'inet prerouting nat prerouting -100 accept',
        'inet output nat output -100 accept',
        'inet postrouting nat postrouting 100 accept',
        'inet forward filter forward 0 accept',
        'bridge forward filter forward -200 accept',
      ]);
      // The rules as nft prints them: the statements the layout documents.
      const text = sh('nft', ['list', 'ruleset'], H);
      for (const line of [
        'iifname @bridges ip daddr 127.0.0.0/8 drop',
        'ip daddr != 127.0.0.0/8 fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @published_hostip',
        'ip daddr != 127.0.0.0/8 fib daddr type local dnat ip to meta l4proto . th dport map @published_any',
        'fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @published_hostip',
        'meta nfproto ipv4 fib daddr type local dnat ip to meta l4proto . th dport map @published_any',
        'fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @published_hostip6',
        'meta nfproto ipv6 fib daddr type local dnat ip6 to meta l4proto . th dport map @published_any6',
        'ip6 daddr != ::1 fib daddr type local dnat ip6 to meta l4proto . th dport map @published_any6',
        'ct status dnat ip6 saddr . oifname @hairpin6 masquerade',
        'ip6 saddr @masq_subnets6 oifname != @bridges masquerade',
        'type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service',
        'ct status dnat ip saddr . oifname @hairpin masquerade',
        'ct status dnat ip saddr 127.0.0.0/8 oifname @bridges masquerade',
        'ip saddr @masq_subnets oifname != @bridges masquerade',
        'iifname != @bridges oifname != @bridges accept',
        'ct state established,related accept',
        'ct state invalid drop',
        'iifname . oifname @icc accept',
        'ct status dnat accept',
        'oifname @bridges drop',
        'iifname @noicc_ports meta pkttype != host drop',
        'type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service',
      ])
        assert.ok(text.includes(line), `nft list ruleset shows "${line}"\n${text}`);
      assert.equal(nsnetRules(H).length, 25);
      assert.equal(countElements(H), 0);
    });

    it('operations before ensure() fail with ERR_FIREWALL_MISSING; bad input fails before the kernel', async () => {
      const H = await makeNetns('fwm');
      const fw = await openFirewall(H);
      await rejectsCode(fw.addNetwork({ name: 'n', bridge: 'br0', subnet: '10.1.0.0/16' }), 'ERR_FIREWALL_MISSING');
      await rejectsCode(fw.publish('e', [{ protocol: 'tcp', hostPort: 80, containerPort: 80, containerIp: '10.1.0.2' }]), 'ERR_FIREWALL_MISSING');
      await fw.ensure();
      await rejectsCode(fw.addNetwork({ name: 'n', bridge: 'br0', subnet: '10.1.0.0/99' }), 'ERR_INVALID_CIDR');
      await rejectsCode(fw.addNetwork({ name: 'n', bridge: 'a-name-much-too-long', subnet: '10.1.0.0/16' }), 'ERR_INVALID_NAME');
      await rejectsCode(fw.addNetwork({ name: '', bridge: 'br0', subnet: '10.1.0.0/16' }), 'ERR_INVALID_NAME');
      const p = (over: Partial<FirewallPort>): FirewallPort[] => [{ protocol: 'tcp', hostPort: 80, containerPort: 80, containerIp: '10.1.0.2', ...over }];
      await rejectsCode(fw.publish('e', p({ protocol: 'icmp' as never })), 'ERR_INVALID_ARGUMENT');
      await rejectsCode(fw.publish('e', p({ hostPort: 0 })), 'ERR_INVALID_ARGUMENT');
      await rejectsCode(fw.publish('e', p({ hostPortEnd: 79 })), 'ERR_INVALID_ARGUMENT');
      await rejectsCode(fw.publish('e', p({ hostPort: 65000, hostPortEnd: 65010, containerPort: 65530 })), 'ERR_INVALID_ARGUMENT');
      await rejectsCode(fw.publish('e', p({ hostIp: 'fe80::1' })), 'ERR_INVALID_HOST_IP');
      await rejectsCode(fw.publish('e', p({ hostIp: '10.0.0.300' })), 'ERR_INVALID_IP');
      await rejectsCode(fw.publish('e', p({ hostIp: '::' })), 'ERR_INVALID_ARGUMENT'); // IPv6 only, and no containerIp6
      await rejectsCode(fw.publish('e', p({ containerIp: undefined })), 'ERR_INVALID_ARGUMENT');
      await rejectsCode(fw.publish('e', [...p({}), ...p({ hostIp: '10.0.0.1', containerPort: 81 })]), 'ERR_INVALID_ARGUMENT');
      await rejectsCode(fw.publish('e', p({ extra: 1 } as never)), 'ERR_INVALID_ARGUMENT');
      await rejectsCode(fw.connectEndpoint({ id: 'e', bridge: 'nobody', hostIfname: 've-e', ipv4: '10.1.0.2' }), 'ERR_NETWORK_NOT_FOUND');
      await rejectsCode(fw.removeOwner('e'), 'ERR_INVALID_ARGUMENT');
      assert.equal(countElements(H), 0, 'nothing was written');
    });

    it('networks: idempotent, replaced when changed, a taken bridge or overlapping subnet refused', async () => {
      const H = await makeNetns('fwn');
      const fw = await openFirewall(H);
      await fw.ensure();
      const app: FirewallNetwork = { name: 'app', bridge: 'br-app', subnet: '172.20.0.0/16' };
      await fw.addNetwork(app);
      const once = nsnetElements(H);
      await fw.addNetwork({ ...app, subnet: '172.20.9.9/16' }); // host bits ignored: the same network
      assert.deepEqual(nsnetElements(H), once);
      assert.deepEqual(once.bridges, [{ elem: { val: 'br-app', comment: 'net:app' } }]);
      assert.deepEqual(once.icc, [{ elem: { val: { concat: ['br-app', 'br-app'] }, comment: 'net:app' } }]);
      assert.deepEqual(once.masq_subnets, [{ elem: { val: { prefix: { addr: '172.20.0.0', len: 16 } }, comment: 'net:app' } }]);
      assert.deepEqual(once.hairpin, [{ elem: { val: { concat: [{ prefix: { addr: '172.20.0.0', len: 16 } }, 'br-app'] }, comment: 'net:app' } }]);

      const e1 = await rejectsCode(fw.addNetwork({ name: 'b', bridge: 'br-b', subnet: '172.20.128.0/24' }), 'ERR_SUBNET_OVERLAP');
      assert.equal(e1.details.network, 'app');
      const e2 = await rejectsCode(fw.addNetwork({ name: 'b', bridge: 'br-app', subnet: '10.9.0.0/24' }), 'ERR_BRIDGE_IN_USE');
      assert.equal(e2.details.network, 'app');

      // Changed settings replace the network's elements in one transaction.
      await fw.addNetwork({ ...app, icc: false, ipMasquerade: false });
      const changed = nsnetElements(H);
      assert.deepEqual(changed.icc, []);
      assert.deepEqual(changed.masq_subnets, []);
      assert.deepEqual(changed.noicc_bridges, [{ elem: { val: 'br-app', comment: 'net:app' } }]);
      await fw.addNetwork({ name: 'vault', bridge: 'br-v', subnet: '10.50.0.0/24', internal: true });
      const v = nsnetElements(H);
      assert.deepEqual(v.internal, [{ elem: { val: 'br-v', comment: 'net:vault' } }]);
      assert.deepEqual(v.internal_subnets, [{ elem: { val: { prefix: { addr: '10.50.0.0', len: 24 } }, comment: 'net:vault' } }]);
      assert.equal(v.hairpin!.length, 1, 'an internal network has no hairpin element');
      await rejectsCode(fw.publish('x', [{ protocol: 'tcp', hostPort: 80, containerPort: 80, containerIp: '10.50.0.7' }]), 'ERR_NETWORK_INTERNAL');

      assert.deepEqual(Firewall.sysctls(app), { 'net.ipv4.ip_forward': '1', 'net.ipv4.conf.br-app.route_localnet': '1' });
      assert.deepEqual(Firewall.sysctls({ name: 'vault', bridge: 'br-v', subnet: '10.50.0.0/24', internal: true }), {});
      assert.deepEqual(Firewall.sysctls({ ...app, bridge: 'br.5' }), { 'net.ipv4.ip_forward': '1', 'net/ipv4/conf/br.5/route_localnet': '1' });

      await fw.removeNetwork('app');
      await fw.removeNetwork('app');
      await fw.removeNetwork('vault');
      assert.equal(countElements(H), 0);
    });

    it('ERR_PORT_IN_USE names the holder, on the same address, across "every address" and one address, and in a race', async () => {
      const H = await makeNetns('fwp');
      const fw = await openFirewall(H);
      const fw2 = await openFirewall(H);
      const nft = await NfTables.open({ netns: H });
      registerCleanup(() => nft.close());
      await fw.ensure();
      await fw.addNetwork({ name: 'app', bridge: 'br-app', subnet: '172.20.0.0/16' });
      const port = (hostPort: number, containerIp: string, hostIp?: string): FirewallPort[] => [
        { protocol: 'tcp', hostPort, containerPort: 80, containerIp, ...(hostIp ? { hostIp } : {}) },
      ];

      await fw.publish('c1', port(8090, '172.20.0.2'));
      const gen = await nft.generation();
      await fw.publish('c1', port(8090, '172.20.0.2'));
      assert.equal(await nft.generation(), gen, 'republishing the same port to the same target is a no-op');
      const same = await rejectsCode(fw.publish('c2', port(8090, '172.20.0.3')), 'ERR_PORT_IN_USE');
      assert.deepEqual(same.details, { protocol: 'tcp', family: 4, hostIp: '0.0.0.0', hostPort: 8090, holder: 'ep:c1', endpoint: 'c1' });
      assert.match(same.message, /tcp port 8090 on 0\.0\.0\.0 is already published by endpoint c1/);
      await rejectsCode(fw.publish('c1', port(8090, '172.20.0.9')), 'ERR_PORT_IN_USE'); // same owner, other target
      const one = await rejectsCode(fw.publish('c2', port(8090, '172.20.0.3', '10.0.0.1')), 'ERR_PORT_IN_USE');
      assert.equal(one.details.endpoint, 'c1');

      // One address first, then every address: found through the index, without a scan of everything.
      await fw.publish('c2', port(8092, '172.20.0.3', '10.0.0.1'));
      const any = await rejectsCode(fw.publish('c1', port(8092, '172.20.0.2')), 'ERR_PORT_IN_USE');
      assert.equal(any.details.endpoint, 'c2');
      assert.match(any.message, /published on 10\.0\.0\.1/);
      await fw.publish('c3', port(8092, '172.20.0.4', '10.0.0.2')); // another address: fine
      assert.deepEqual(nsnetElements(H).hostip_ports, [{ concat: ['tcp', 8092] }]);
      await fw.unpublish('c2', port(8092, '172.20.0.3', '10.0.0.1'));
      assert.equal(nsnetElements(H).hostip_ports!.length, 1, 'still held on 10.0.0.2');
      await fw.unpublish('c3');
      assert.deepEqual(nsnetElements(H).hostip_ports, [], 'the index follows the last single-address holder');
      await fw.publish('c1', port(8092, '172.20.0.2'));

      // A race between two handles for one port: exactly one wins; the other is told who.
      const results = await Promise.allSettled([fw.publish('r1', port(8091, '172.20.0.5')), fw2.publish('r2', port(8091, '172.20.0.6'))]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(won.length, 1, JSON.stringify(results));
      assert.equal(lost[0]!.reason.code, 'ERR_PORT_IN_USE', lost[0]!.reason.message);
      assert.match(String(lost[0]!.reason.details.endpoint), /^r[12]$/);

      // Unpublishing only touches the owner's elements.
      await fw.unpublish('c2', port(8090, '172.20.0.3'));
      assert.equal(nsnetElements(H).published_any!.filter((e) => e[0].elem.val.concat[1] === 8090).length, 1, "c1's element is left alone");
      for (const id of ['c1', 'r1', 'r2']) await fw.unpublish(id);
      await fw.removeNetwork('app');
      assert.equal(countElements(H), 0);
    });

    it('listOwned() groups elements by owner; removeOwner() drops one owner (gc); ensure() repairs a damaged table keeping elements', async () => {
      const H = await makeNetns('fwo');
      const fw = await openFirewall(H);
      await fw.ensure();
      await fw.addNetwork({ name: 'quiet', bridge: 'br-q', subnet: '172.21.0.0/24', icc: false });
      const ep: FirewallEndpoint = {
        id: 'q1',
        bridge: 'br-q',
        hostIfname: 've-q1',
        ipv4: '172.21.0.2',
        ports: [
          { protocol: 'udp', hostPort: 5353, containerPort: 53 },
          { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80 },
        ],
      };
      await fw.connectEndpoint(ep);
      await fw.connectEndpoint(ep);
      const owned = await fw.listOwned();
      assert.deepEqual([...owned.keys()].sort(), ['ep:q1', 'net:quiet']);
      assert.deepEqual(
        owned
          .get('ep:q1')!
          .map((e) => `${e.family} ${e.set} ${JSON.stringify(e.key)} ${JSON.stringify(e.value)}`)
          .sort(),
        [
          'bridge noicc_ports "ve-q1" undefined',
          'inet published_any ["udp",5353] ["172.21.0.2",53]',
          'inet published_hostip ["127.0.0.1","tcp",8080] ["172.21.0.2",80]',
        ],
      );
      assert.equal(owned.get('net:quiet')!.length, 4);

      // Someone deletes a rule of nsnet's table: check() says which, ensure() rewrites both
      // tables in one transaction and keeps every element.
      const before = nsnetElements(H);
      const handle = nftObjects(H, 'rule').find((r) => r.table === 'nsnet' && r.chain === 'forward' && r.comment === 'nsnet: invalid').handle;
      sh('nft', ['delete', 'rule', 'inet', 'nsnet', 'forward', 'handle', String(handle)], H);
      const chk = await fw.check();
      assert.equal(chk.intact, false);
      assert.ok(chk.problems.includes('inet nsnet: chain forward has 8 rules, expected 9'), chk.problems.join('; '));
      assert.equal(await fw.ensure(), 'repaired');
      assert.equal(await fw.isIntact(), true);
      assert.deepEqual(nsnetElements(H), before);

      assert.equal(await fw.removeOwner('ep:q1'), 3);
      assert.deepEqual([...(await fw.listOwned()).keys()], ['net:quiet']);
      assert.deepEqual(nsnetElements(H).hostip_ports, [], 'the derived index is cleaned too');
      assert.equal(await fw.removeOwner('ep:q1'), 0);
      await fw.disconnectEndpoint({ id: 'q1', hostIfname: 've-q1', ports: ep.ports! }); // nothing left: a no-op (no bridge or address needed)
      await fw.removeOwner('net:quiet');
      assert.equal(countElements(H), 0);
      await fw.uninstall();
      assert.deepEqual(nftObjects(H, 'table'), []);
    });
  });

  describe('real traffic: a host, an external peer, containers on four networks', () => {
    let H: string, E: string;
    let fw: Firewall;
    const c: Record<string, string> = {};
    const nets: Record<string, FirewallNetwork> = {};
    const eps: Record<string, FirewallEndpoint> = {};
    const HOST = '10.70.0.1';
    const HOST2 = '10.70.0.3';
    const PEER = '10.70.0.2';

    /** Everything the firewall should hold for this world, as a store would say. */
    const state = () => ({ networks: Object.values(nets), endpoints: Object.values(eps) });

    before(async () => {
      H = await makeNetns('fwh');
      E = await makeNetns('fwe');
      ip(H, 'link', 'add', 'hx', 'type', 'veth', 'peer', 'name', 'ex0', 'netns', E);
      ip(H, 'addr', 'add', `${HOST}/24`, 'dev', 'hx');
      ip(H, 'addr', 'add', `${HOST2}/24`, 'dev', 'hx');
      ip(E, 'addr', 'add', `${PEER}/24`, 'dev', 'ex0');
      ip(H, 'link', 'set', 'hx', 'up');
      ip(E, 'link', 'set', 'ex0', 'up');
      // E knows the way to network A only (to prove isolation from outside); its replies to
      // other container subnets have nowhere to go: only masquerade makes egress work.
      ip(E, 'route', 'add', '172.30.0.0/24', 'via', HOST);

      fw = await Firewall.open({ netns: H });
      registerCleanup(() => fw.close(), 'close the firewall');
      assert.equal(await fw.ensure(), 'created');
      const specs: [string, number, Partial<FirewallNetwork>, string[]][] = [
        ['app', 30, {}, ['a1', 'a2']],
        ['other', 31, { ipMasquerade: false }, ['b1']],
        ['quiet', 32, { icc: false }, ['q1', 'q2']],
        ['vault', 33, { internal: true }, ['i1']],
      ];
      for (const [name, octet, opts, members] of specs) {
        const bridge = uniqueName('fb');
        ip(H, 'link', 'add', bridge, 'type', 'bridge');
        ip(H, 'addr', 'add', `172.${octet}.0.1/24`, 'dev', bridge);
        ip(H, 'link', 'set', bridge, 'up');
        const net: FirewallNetwork = { name, bridge, subnet: `172.${octet}.0.0/24`, ...opts };
        nets[name] = net;
        // What a bridge driver does: the sysctls the firewall asks for, then the network.
        for (const [key, value] of Object.entries(Firewall.sysctls(net))) assert.equal(await Netns.sysctl(H, key, value), value);
        await fw.addNetwork(net);
        for (const [i, m] of members.entries()) {
          const ns = await makeNetns(`fw${m}`);
          c[m] = ns;
          const hostIfname = uniqueName('fv');
          const addr = `172.${octet}.0.${i + 2}`;
          ip(H, 'link', 'add', hostIfname, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
          ip(H, 'link', 'set', hostIfname, 'master', bridge, 'up');
          // What the bridge driver does for every port (see the hairpin test).
          ip(H, 'link', 'set', hostIfname, 'type', 'bridge_slave', 'hairpin', 'on');
          ip(ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
          ip(ns, 'link', 'set', 'eth0', 'up');
          ip(ns, 'route', 'add', 'default', 'via', `172.${octet}.0.1`);
          eps[m] = { id: m, bridge, hostIfname, ipv4: addr, ports: [] };
          await fw.connectEndpoint(eps[m]!);
          await echoServer(ns, m, [80, 7000, 7001, 7002], [53]);
        }
      }
      await echoServer(E, 'E', [80], [53]);
      await echoServer(H, 'H', [5555], []);
    });

    /** Publishes for the test, unpublished afterwards (even on failure). */
    async function publish(id: string, ports: FirewallPort[]): Promise<void> {
      await fw.publish(
        id,
        ports.map((p) => ({ containerIp: eps[id]?.ipv4 ?? '172.30.0.2', ...p })),
      );
      registerCleanup(
        () =>
          fw.unpublish(
            id,
            ports.map((p) => ({ containerIp: '0.0.0.0', ...p })),
          ),
        `unpublish ${id}`,
      );
    }

    it('external peer → host IP:8080 → container:80 over TCP and UDP; the container sees the peer', async () => {
      assert.ok(failed(tcp(E, HOST, 8080)), 'sanity: nothing answers before the port is published');
      await publish('a1', [
        { protocol: 'tcp', hostPort: 8080, containerPort: 80 },
        { protocol: 'udp', hostPort: 5353, containerPort: 53 },
      ]);
      assert.deepEqual(
        ask(E, [
          { proto: 'tcp', addr: HOST, port: 8080 },
          { proto: 'udp', addr: HOST, port: 5353 },
          { proto: 'tcp', addr: HOST2, port: 8080 },
        ]),
        [`a1:80 ${PEER}`, `a1:53 ${PEER}`, `a1:80 ${PEER}`],
      );
    });

    it('a port range maps port by port; host-local access through the host IP (output chain)', async () => {
      await publish('a2', [{ protocol: 'tcp', hostPort: 9000, hostPortEnd: 9002, containerPort: 7000 }]);
      assert.deepEqual(
        ask(
          E,
          [9000, 9001, 9002, 9003].map((port) => ({ proto: 'tcp' as const, addr: HOST, port })),
        ),
        [`a2:7000 ${PEER}`, `a2:7001 ${PEER}`, `a2:7002 ${PEER}`, 'error:ECONNREFUSED'],
      );
      assert.equal(tcp(H, HOST, 9001), `a2:7001 ${HOST}`, 'the host reaches it through its own address');
      assert.match(tcp(H, HOST2, 9002), /^a2:7002 10\.70\.0\.[13]$/);
      assert.equal(tcp(H, '127.0.0.1', 9001), 'a2:7001 172.30.0.1', 'every address includes 127.0.0.1 (as Docker and portmap), masqueraded to the gateway');
    });

    it('127.0.0.1 publishing (route_localnet): the host reaches the container; no one else does', async () => {
      await publish('a1', [
        { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8081, containerPort: 80 },
        { protocol: 'udp', hostIp: '127.0.0.1', hostPort: 5354, containerPort: 53 },
      ]);
      assert.deepEqual(
        ask(H, [
          { proto: 'tcp', addr: '127.0.0.1', port: 8081 },
          { proto: 'udp', addr: '127.0.0.1', port: 5354 },
        ]),
        ['a1:80 172.30.0.1', 'a1:53 172.30.0.1'],
        'masqueraded to the gateway address',
      );
      assert.ok(failed(tcp(H, HOST, 8081)), 'not on the host address');
      assert.ok(failed(tcp(E, HOST, 8081)), 'not from outside');
    });

    it('a neighbour that sends packets for 127.0.0.1 to the host reaches no published port (prerouting never DNATs loopback)', async () => {
      await publish('a1', [
        { protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 8081, containerPort: 80 },
        { protocol: 'udp', hostIp: '127.0.0.1', hostPort: 5354, containerPort: 53 },
      ]);
      await publish('a2', [{ protocol: 'tcp', hostPort: 8088, containerPort: 80 }]);
      // E routes 127.0.0.1 to the host (as a machine on a shared LAN can) and accepts loopback replies.
      assert.equal(await Netns.sysctl(E, 'net.ipv4.conf.ex0.route_localnet', 1), '1');
      // (Without its loopback address, whose local routes would keep 127.0.0.1 inside E.)
      ip(E, 'addr', 'del', '127.0.0.1/8', 'dev', 'lo');
      ip(E, 'route', 'add', '127.0.0.1/32', 'via', HOST, 'dev', 'ex0');
      registerCleanup(() => {
        ip(E, 'route', 'del', '127.0.0.1/32');
        ip(E, 'addr', 'add', '127.0.0.1/8', 'dev', 'lo');
      }, 'restore loopback of E');
      const probe = () =>
        ask(E, [
          { proto: 'tcp', addr: '127.0.0.1', port: 8081 },
          { proto: 'udp', addr: '127.0.0.1', port: 5354 },
          { proto: 'tcp', addr: '127.0.0.1', port: 8088 },
        ]);
      assert.deepEqual(probe().map(failed), [true, true, true], 'neither the 127.0.0.1 ports nor the every-address port');
      assert.equal(tcp(H, '127.0.0.1', 8081), 'a1:80 172.30.0.1', 'the host itself still does');
      // Sanity: without the loopback exclusion (the rule as it was before), the neighbour gets in.
      sh(
        'nft',
        [
          'insert',
          'rule',
          'inet',
          'nsnet',
          'prerouting',
          'fib',
          'daddr',
          'type',
          'local',
          'dnat',
          'ip',
          'to',
          'ip',
          'daddr',
          '.',
          'meta',
          'l4proto',
          '.',
          'th',
          'dport',
          'map',
          '@published_hostip',
        ],
        H,
      );
      assert.equal(tcp(E, '127.0.0.1', 8081), `a1:80 ${PEER}`, 'sanity: the hole the exclusion closes');
      assert.equal(await fw.ensure(), 'repaired');
      assert.deepEqual(probe().map(failed), [true, true, true]);
    });

    it('the guard: a container cannot reach the host loopback through its bridge, although route_localnet is on', async () => {
      // a1 routes 127.0.0.2 to its gateway (loopback routing allowed on its eth0).
      const A = c.a1!;
      assert.equal(await Netns.sysctl(A, 'net.ipv4.conf.eth0.route_localnet', 1), '1');
      ip(A, 'route', 'del', 'local', '127.0.0.0/8', 'dev', 'lo', 'table', 'local');
      ip(A, 'route', 'add', '127.0.0.2/32', 'via', '172.30.0.1', 'dev', 'eth0');
      registerCleanup(() => {
        ip(A, 'route', 'del', '127.0.0.2/32');
        ip(A, 'route', 'add', 'local', '127.0.0.0/8', 'dev', 'lo', 'table', 'local');
      }, 'restore loopback routing of a1');
      assert.ok(failed(tcp(A, '127.0.0.2', 5555)), 'the guard drops it');
      // Without the guard the host's loopback services would be exposed: delete the rule ...
      const guard = nftObjects(H, 'rule').find(
        (r) => r.table === 'nsnet' && r.chain === 'guard' && r.comment === 'nsnet: no loopback destination from a bridge',
      );
      sh('nft', ['delete', 'rule', 'inet', 'nsnet', 'guard', 'handle', String(guard.handle)], H);
      assert.equal(tcp(A, '127.0.0.2', 5555), 'H:5555 172.30.0.2', 'sanity: without the guard, the host answers');
      // ... and ensure() restores it, keeping every element (published ports still work).
      await publish('a2', [{ protocol: 'tcp', hostPort: 8085, containerPort: 80 }]);
      assert.equal(await fw.ensure(), 'repaired');
      assert.ok(failed(tcp(A, '127.0.0.2', 5555)));
      assert.equal(tcp(E, HOST, 8085), `a2:80 ${PEER}`);
    });

    it("hairpin: a container reaches its own and its peer's published port through the host IP; another network reaches it too", async () => {
      await publish('a1', [{ protocol: 'tcp', hostPort: 8080, containerPort: 80 }]);
      assert.equal(tcp(c.a1!, HOST, 8080), 'a1:80 172.30.0.1', 'itself, masqueraded to the gateway');
      assert.equal(tcp(c.a2!, HOST, 8080), 'a1:80 172.30.0.1', 'its peer');
      assert.equal(tcp(c.b1!, HOST, 8080), 'a1:80 172.31.0.2', 'from another network: published ports are public');
    });

    it('both kernel paths: hairpin bridged back by br_netfilter, or routed without it — the same outcome', async () => {
      const key = 'net.bridge.bridge-nf-call-iptables';
      const orig = await Netns.sysctl(H, key);
      registerCleanup(() => Netns.sysctl(H, key, orig), `restore ${key}`);
      await publish('a1', [{ protocol: 'tcp', hostPort: 8080, containerPort: 80 }]);
      await publish('q2', [{ protocol: 'tcp', hostPort: 8082, containerPort: 80 }]);
      for (const mode of ['1', '0']) {
        assert.equal(await Netns.sysctl(H, key, mode), mode);
        const why = `bridge-nf-call-iptables=${mode}`;
        assert.deepEqual(
          ask(c.a1!, [
            { proto: 'tcp', addr: HOST, port: 8080 },
            { proto: 'tcp', addr: '172.30.0.3', port: 80 },
            { proto: 'tcp', addr: '172.31.0.2', port: 80 },
          ]),
          ['a1:80 172.30.0.1', 'a2:80 172.30.0.2', 'timeout'],
          why,
        );
        assert.deepEqual(
          ask(c.q1!, [
            { proto: 'tcp', addr: HOST, port: 8082 },
            { proto: 'tcp', addr: '172.32.0.3', port: 80 },
          ]),
          ['q2:80 172.32.0.1', 'timeout'],
          why,
        );
        assert.equal(tcp(c.q2!, HOST, 8082), 'q2:80 172.32.0.1', `a no-ICC container reaches its own published port (${why})`);
      }
      // With br_netfilter the hairpin frame leaves by the port it came in: the bridge port's
      // hairpin mode (the bridge driver sets it) is what allows that.
      assert.equal(await Netns.sysctl(H, key, '1'), '1');
      ip(H, 'link', 'set', eps.a1!.hostIfname, 'type', 'bridge_slave', 'hairpin', 'off');
      registerCleanup(() => ip(H, 'link', 'set', eps.a1!.hostIfname, 'type', 'bridge_slave', 'hairpin', 'on'), 'hairpin back on');
      assert.ok(failed(tcp(c.a1!, HOST, 8080)), 'sanity: without hairpin mode the bridge does not send it back');
      assert.equal(tcp(c.a2!, HOST, 8080), 'a1:80 172.30.0.1', 'its peer still does');
    });

    it('egress: the external peer sees the host address and replies come back; without masquerade they cannot', async () => {
      assert.deepEqual(
        ask(c.a1!, [
          { proto: 'tcp', addr: PEER, port: 80 },
          { proto: 'udp', addr: PEER, port: 53 },
        ]),
        [`E:80 ${HOST}`, `E:53 ${HOST}`],
      );
      assert.equal(tcp(c.q1!, PEER, 80), `E:80 ${HOST}`);
      assert.ok(failed(tcp(c.b1!, PEER, 80)), 'network "other" has ipMasquerade off and E has no route back');
    });

    it('isolation: containers of one network talk; two networks cannot; the outside cannot enter', async () => {
      assert.deepEqual(
        ask(c.a1!, [
          { proto: 'tcp', addr: '172.30.0.3', port: 80 },
          { proto: 'tcp', addr: '172.31.0.2', port: 80 },
          { proto: 'tcp', addr: '172.32.0.2', port: 80 },
        ]),
        ['a2:80 172.30.0.2', 'timeout', 'timeout'],
      );
      assert.ok(failed(tcp(c.b1!, '172.30.0.2', 80)));
      assert.ok(failed(tcp(E, '172.30.0.2', 80)), 'E routes to 172.30.0.0/24 through the host, but nothing unpublished enters');
    });

    it('icc: false — two containers of the network cannot talk (L2), yet reach the outside and published ports', async () => {
      assert.ok(failed(tcp(c.q1!, '172.32.0.3', 80)));
      assert.ok(failed(tcp(c.q2!, '172.32.0.2', 80)));
      assert.deepEqual(
        nsnetElements(H)
          .noicc_ports!.map((e) => e.elem.val)
          .sort(),
        [eps.q1!.hostIfname, eps.q2!.hostIfname].sort(),
      );
      await publish('q2', [{ protocol: 'tcp', hostPort: 8082, containerPort: 80 }]);
      assert.equal(tcp(c.q1!, HOST, 8082), 'q2:80 172.32.0.1', 'a published port of a peer, through the host');
      // Sanity: it is the L2 table's doing. Without br_netfilter (routed hairpin, bridged ICC
      // traffic never meets the inet hooks) the two ports' elements are all that stops them.
      const key = 'net.bridge.bridge-nf-call-iptables';
      const orig = await Netns.sysctl(H, key);
      registerCleanup(() => Netns.sysctl(H, key, orig), `restore ${key}`);
      assert.equal(await Netns.sysctl(H, key, '0'), '0');
      assert.ok(failed(tcp(c.q1!, '172.32.0.3', 80)));
      registerCleanup(async () => {
        await fw.connectEndpoint(eps.q1!);
        await fw.connectEndpoint(eps.q2!);
      }, 'reconnect q1 and q2');
      await fw.disconnectEndpoint({ ...eps.q1!, ports: [] });
      await fw.disconnectEndpoint({ ...eps.q2!, ports: [] });
      assert.equal(tcp(c.q1!, '172.32.0.3', 80), 'q2:80 172.32.0.2');
      await fw.connectEndpoint(eps.q1!);
      await fw.connectEndpoint(eps.q2!);
      assert.ok(failed(tcp(c.q1!, '172.32.0.3', 80)));
    });

    it('internal network: reaches nothing outside it, is reached by nothing, and cannot publish', async () => {
      assert.deepEqual(
        ask(c.i1!, [
          { proto: 'tcp', addr: PEER, port: 80 },
          { proto: 'tcp', addr: '172.30.0.2', port: 80 },
          { proto: 'udp', addr: PEER, port: 53 },
        ]),
        ['timeout', 'timeout', 'timeout'],
      );
      assert.ok(failed(tcp(c.a1!, '172.33.0.2', 80)));
      const err = await rejectsCode(
        fw.publish('i1', [{ protocol: 'tcp', hostPort: 8086, containerPort: 80, containerIp: '172.33.0.2' }]),
        'ERR_NETWORK_INTERNAL',
      );
      assert.equal(err.details.network, 'vault');
    });

    it('a port published on one host IP is not reachable on another; that port on another IP is free', async () => {
      await publish('a1', [{ protocol: 'tcp', hostIp: HOST2, hostPort: 8083, containerPort: 80 }]);
      assert.deepEqual(
        ask(E, [
          { proto: 'tcp', addr: HOST2, port: 8083 },
          { proto: 'tcp', addr: HOST, port: 8083 },
        ]),
        [`a1:80 ${PEER}`, 'error:ECONNREFUSED'],
      );
      await publish('a2', [{ protocol: 'tcp', hostIp: HOST, hostPort: 8083, containerPort: 80 }]);
      assert.deepEqual(
        ask(E, [
          { proto: 'tcp', addr: HOST2, port: 8083 },
          { proto: 'tcp', addr: HOST, port: 8083 },
        ]),
        [`a1:80 ${PEER}`, `a2:80 ${PEER}`],
      );
    });

    it('republishing a removed UDP port to another container reaches the new one at once (conntrack entries deleted)', async () => {
      const flow = (): string => udp(E, HOST, 5300, 40000);
      const entries = (): string[] => conntrackList(H, ['-p', 'udp', '--orig-port-dst', '5300']);
      await fw.publish('a1', [{ protocol: 'udp', hostPort: 5300, containerPort: 53, containerIp: '172.30.0.2' }]);
      assert.equal(flow(), `a1:53 ${PEER}`);
      assert.equal(entries().length, 1);
      // Sanity: re-pointing the map element behind the firewall's back does not move the flow.
      const repoint = (target: string): void => {
        sh('nft', ['delete', 'element', 'inet', 'nsnet', 'published_any', '{ udp . 5300 }'], H);
        sh('nft', ['add', 'element', 'inet', 'nsnet', 'published_any', `{ udp . 5300 comment "ep:a1" : ${target} . 53 }`], H);
      };
      repoint('172.30.0.3');
      assert.equal(flow(), `a1:53 ${PEER}`, 'sanity: the conntrack entry keeps the old target');
      repoint('172.30.0.2');

      await fw.unpublish('a1', [{ protocol: 'udp', hostPort: 5300, containerPort: 53 }]);
      assert.deepEqual(entries(), [], 'unpublish deleted the entries of host port 5300');
      assert.ok(failed(flow()), 'nothing answers while unpublished (and the host now tracks the flow un-NATed)');
      await fw.publish('a2', [{ protocol: 'udp', hostPort: 5300, containerPort: 53, containerIp: '172.30.0.3' }]);
      assert.equal(flow(), `a2:53 ${PEER}`, 'the same flow reaches the new container at once');
      await fw.unpublish('a2');
      assert.deepEqual(entries(), []);
    });

    it('the rule count is the same with 1 and with 200 published ports (200 endpoints); afterwards no endpoint element remains', async () => {
      const rules0 = nsnetRules(H).length;
      const elements0 = countElements(H);
      const ids = Array.from({ length: 200 }, (_, i) => `bulk-${i}`);
      const portOf = (i: number): FirewallPort[] => [
        { protocol: i % 2 ? 'udp' : 'tcp', hostPort: 20000 + i, containerPort: i % 2 ? 53 : 80, containerIp: i % 3 ? '172.30.0.2' : '172.30.0.3' },
      ];
      await fw.publish(ids[0]!, portOf(0));
      assert.equal(nsnetRules(H).length, rules0);
      for (let i = 1; i < ids.length; i++) await fw.publish(ids[i]!, portOf(i));
      assert.equal(nsnetRules(H).length, rules0, 'no rule was added');
      assert.equal(countElements(H), elements0 + 200);
      assert.deepEqual(
        ask(
          E,
          [0, 1, 2, 3, 198, 199].map((i) => ({ proto: i % 2 ? ('udp' as const) : ('tcp' as const), addr: HOST, port: 20000 + i })),
        ),
        [`a2:80 ${PEER}`, `a1:53 ${PEER}`, `a1:80 ${PEER}`, `a2:53 ${PEER}`, `a2:80 ${PEER}`, `a1:53 ${PEER}`],
      );
      const owned = await fw.listOwned();
      assert.equal(ids.filter((id) => owned.get(`ep:${id}`)?.length === 1).length, 200);
      for (let i = 0; i < ids.length; i++) await fw.unpublish(ids[i]!, portOf(i));
      assert.equal(nsnetRules(H).length, rules0);
      assert.equal(countElements(H), elements0);
      assert.deepEqual(conntrackList(H, ['-p', 'udp', '--orig-port-dst', '20001']), []);
    });

    it('nft flush ruleset: check() says so, traffic stops; rebuild() from the desired state restores it', async () => {
      await publish('a1', [{ protocol: 'tcp', hostPort: 8080, containerPort: 80 }]);
      eps.a1!.ports = [{ protocol: 'tcp', hostPort: 8080, containerPort: 80 }];
      registerCleanup(() => {
        eps.a1!.ports = [];
      });
      assert.equal(tcp(E, HOST, 8080), `a1:80 ${PEER}`);
      const before = nsnetElements(H);
      sh('nft', ['flush', 'ruleset'], H);
      assert.equal((await fw.check()).absent, true);
      assert.ok(failed(tcp(E, HOST, 8080)));
      await rejectsCode(fw.publish('a2', [{ protocol: 'tcp', hostPort: 8087, containerPort: 80, containerIp: '172.30.0.3' }]), 'ERR_FIREWALL_MISSING');
      await rejectsCode(fw.connectEndpoint(eps.a2!), 'ERR_FIREWALL_MISSING');
      // Removals find nothing to remove: they succeed, so teardown works without the tables.
      await fw.disconnectEndpoint({ ...eps.q1!, ports: [{ protocol: 'udp', hostPort: 1, containerPort: 1 }] });
      await fw.unpublish('a1');
      assert.equal(await fw.removeOwner('ep:a1'), 0);
      await fw.removeNetwork('app');
      assert.equal((await fw.check()).absent, true, 'and they created nothing');
      await fw.rebuild(state());
      assert.equal(await fw.isIntact(), true);
      assert.deepEqual(nsnetElements(H), before);
      assert.equal(tcp(E, HOST, 8080), `a1:80 ${PEER}`);
      assert.ok(failed(tcp(c.a1!, '172.31.0.2', 80)), 'isolation is back');
      assert.ok(failed(tcp(c.q1!, '172.32.0.3', 80)), 'no-ICC is back');
      assert.equal(tcp(c.a1!, PEER, 80), `E:80 ${HOST}`, 'masquerade is back');
      // rebuild() on an intact firewall rewrites it to the same content.
      await fw.rebuild(state());
      assert.deepEqual(nsnetElements(H), before);
      await rejectsCode(
        fw.rebuild({ networks: Object.values(nets), endpoints: [eps.a1!, { ...eps.a2!, ports: [{ protocol: 'tcp', hostPort: 8080, containerPort: 80 }] }] }),
        'ERR_PORT_IN_USE',
      );
    });

    after(async () => {
      if (!fw || !H) return;
      // Every endpoint, then every network: nothing of nsnet's remains but the skeleton.
      for (const ep of Object.values(eps)) await fw.disconnectEndpoint(ep);
      for (const name of Object.keys(nets)) await fw.removeNetwork(name);
      assert.deepEqual(
        Object.entries(nsnetElements(H)).filter(([, e]) => e.length),
        [],
      );
    });
  });
});
