/**
 * doctor() against the kernel. Oracles: what `ip link add` of each kind and `nft -f` of each
 * probed statement actually do in a namespace the test made, `conntrack -L`, `ip xfrm state`,
 * `sysctl`; and, for the inspected namespace, `ip -j -d link show`, `nft -j list ruleset` and
 * `ip netns list` before and after. Host state (a policy-drop forward chain, ip_forward,
 * br_netfilter) is set up with `nft` and `sysctl` in a test namespace given as `netns`.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { doctor, NsnetError, type DoctorReport, type LinkKind, type NftFeature } from '../../lib/index';
import { FEATURES, LINK_KINDS, NFT_FEATURES, probeLinks, probeNftables } from '../../lib/doctor/features';
import { FileStore } from '../../lib/store/index';
import { makeNetns, useSandbox } from '../helpers/sandbox';
import { ipJson, nftJson, sh } from '../helpers/oracle';

// ------------------------------------------------------------------------------------ oracles

/** Runs a command; true when it exits 0 (its failure is an answer here, not an error). */
function succeeds(cmd: string, args: string[], input?: string): { ok: boolean; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, timeout: 20000 });
  if (r.error) throw r.error;
  return { ok: r.status === 0, stderr: String(r.stderr).trim() };
}

/** `ip link add` arguments for each kind, the way a person would type them (parent: veth p0). */
const IP_LINK_ADD: Record<LinkKind, string[]> = {
  veth: ['p0', 'type', 'veth', 'peer', 'name', 'p1'],
  bridge: ['t-br', 'type', 'bridge'],
  vxlan: ['t-vx', 'type', 'vxlan', 'id', '42', 'dstport', '4789'],
  macvlan: ['t-mv', 'link', 'p0', 'type', 'macvlan', 'mode', 'bridge'],
  ipvlan: ['t-ipv', 'link', 'p0', 'type', 'ipvlan'],
  vlan: ['t-vl', 'link', 'p0', 'type', 'vlan', 'id', '10'],
  dummy: ['t-dm', 'type', 'dummy'],
  wireguard: ['t-wg', 'type', 'wireguard'],
  geneve: ['t-gn', 'type', 'geneve', 'id', '5', 'remote', '192.0.2.1'],
};

/** Each nf_tables probe as the nft statements it stands for (the nsnet skeleton aside). */
const NFT_TEXT: Record<Exclude<NftFeature, 'nsnet_firewall'>, string> = {
  nftables:
    'table inet t { set s { type ifname; elements = { "dbr0" }; }; chain f { type filter hook forward priority 0; iifname != @s ip saddr & 255.0.0.0 == 10.0.0.0 accept; }; }',
  nft_nat:
    'table inet t { chain pre { type nat hook prerouting priority -100; }; chain out { type nat hook output priority -100; }; chain post { type nat hook postrouting priority 100; }; }',
  nft_masquerade: 'table inet t { chain post { type nat hook postrouting priority 100; oifname "dbr0" masquerade; }; }',
  nft_dnat:
    'table inet t { map m { type inet_proto . inet_service : ipv4_addr . inet_service; elements = { tcp . 8080 : 172.20.0.2 . 80 }; }; chain pre { type nat hook prerouting priority -100; dnat ip to meta l4proto . th dport map @m; }; }',
  nft_nat_ipv6:
    'table inet t { map h { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; elements = { 2001:db8::1 . tcp . 8080 : fd00:20::2 . 80 }; }; map a { type inet_proto . inet_service : ipv6_addr . inet_service; elements = { udp . 5353 : fd00:20::2 . 53 }; }; set s { type ipv6_addr; flags interval; elements = { fd00:20::/64 }; }; chain pre { type nat hook prerouting priority -100; fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @h; meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @a; }; chain post { type nat hook postrouting priority 100; ip6 saddr @s masquerade; }; }',
  nft_redirect: 'table inet t { chain pre { type nat hook prerouting priority -100; meta l4proto tcp redirect; }; }',
  nft_ct: 'table inet t { chain f { type filter hook forward priority 0; ct state established,related accept; ct status dnat accept; }; }',
  nft_fib: 'table inet t { chain pre { type filter hook prerouting priority 0; fib daddr type local accept; }; }',
  nft_concat_sets:
    'table inet t { set s { type ifname . ifname; elements = { "dbr0" . "dbr0" }; }; chain f { type filter hook forward priority 0; iifname . oifname @s accept; }; }',
  nft_interval_sets:
    'table inet t { set s { type ipv4_addr; flags interval; elements = { 172.20.0.0/16, 10.1.0.1-10.1.0.9 }; }; chain f { type filter hook forward priority 0; ip saddr @s accept; }; }',
  nft_concat_interval_sets:
    'table inet t { set s { type ipv4_addr . ifname; flags interval; elements = { 172.20.0.0/16 . "dbr0" }; }; chain f { type filter hook forward priority 0; ip saddr . oifname @s accept; }; }',
  nft_verdict_maps:
    'table inet t { chain c { }; map m { type ifname : verdict; elements = { "dbr0" : jump c, "dbr1" : drop }; }; chain f { type filter hook forward priority 0; iifname vmap @m; }; }',
  nft_bridge:
    'table bridge t { set s { type ifname; elements = { "dv0" }; }; chain f { type filter hook forward priority -200; iifname @s meta pkttype != host drop; }; }',
};

/** What `nft -f` of one probe's statements does in a fresh namespace. */
async function nftOracle(text: string): Promise<{ ok: boolean; stderr: string }> {
  const ns = await makeNetns('dno');
  return succeeds('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], text);
}

function sysctlIn(ns: string, key: string, value?: string): string {
  return sh('sysctl', ['-n', ...(value === undefined ? [key] : ['-w', `${key}=${value}`])], ns).trim();
}

const leftovers = (): string[] =>
  sh('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith('nsnet-doctor-'));

const warningsOf = (r: DoctorReport, code: string) => r.warnings.filter((w) => w.code === code);

// ------------------------------------------------------------------------------------ tests

describe('doctor()', function () {
  this.timeout(60000);
  useSandbox();

  let report: DoctorReport;
  before(async () => {
    report = await doctor();
  });

  describe('kernel features', () => {
    it('reports each link kind exactly as `ip link add` of that kind behaves in a scratch namespace', async () => {
      const ns = await makeNetns('dlk');
      const oracle: Record<string, boolean> = {};
      for (const kind of LINK_KINDS) {
        const r = succeeds('ip', ['-n', ns, 'link', 'add', ...IP_LINK_ADD[kind]]);
        oracle[kind] = r.ok;
        // When ip says no, the kernel said why; the report carries the same reason.
        if (!r.ok) assert.match(report.features[kind].detail ?? '', /EOPNOTSUPP: Unknown device type/u, `${kind}: ip said ${r.stderr}`);
      }
      const reported = Object.fromEntries(LINK_KINDS.map((k) => [k, report.features[k].available]));
      assert.deepEqual(reported, oracle);
      // Both outcomes occur on this kernel, so the comparison covers kinds present and absent.
      assert.ok(Object.values(oracle).includes(true) && Object.values(oracle).includes(false));
    });

    it('knows this kernel: veth, bridge, vxlan, macvlan yes; ipvlan, vlan (and dummy, wireguard, geneve) no', () => {
      for (const k of ['veth', 'bridge', 'vxlan', 'macvlan'] as const) assert.equal(report.features[k].available, true, `${k}: ${report.features[k].detail}`);
      for (const k of ['ipvlan', 'vlan', 'dummy', 'wireguard', 'geneve'] as const) {
        assert.equal(report.features[k].available, false, k);
        assert.match(report.features[k].detail ?? '', /^EOPNOTSUPP/u);
      }
    });

    it('reports each nf_tables feature as `nft -f` of the same statements behaves', async () => {
      for (const f of Object.keys(NFT_TEXT) as (keyof typeof NFT_TEXT)[]) {
        const r = await nftOracle(NFT_TEXT[f]);
        assert.equal(
          report.features[f].available,
          r.ok,
          `${f}: nft -f ${r.ok ? 'succeeded' : `failed: ${r.stderr}`}, report says ${JSON.stringify(report.features[f])}`,
        );
      }
      assert.equal(report.features.nsnet_firewall.available, true, report.features.nsnet_firewall.detail);
    });

    it('reports IPv6 forwarding as `sysctl -w net.ipv6.conf.all.forwarding=1` behaves in a fresh namespace', async () => {
      const ns = await makeNetns('d6f');
      const r = succeeds('ip', ['netns', 'exec', ns, 'sysctl', '-w', 'net.ipv6.conf.all.forwarding=1']);
      assert.equal(report.features.ipv6_forwarding.available, r.ok, `${r.stderr} ${JSON.stringify(report.features.ipv6_forwarding)}`);
      assert.equal(report.features.ipv6_forwarding.available, true, 'this kernel has IPv6');
      assert.equal(report.features.nft_nat_ipv6.available, true, report.features.nft_nat_ipv6.detail);
    });

    it('reports conntrack and xfrm as `conntrack -L` and `ip xfrm state` behave', async () => {
      const ns = await makeNetns('dct');
      assert.equal(report.features.conntrack.available, succeeds('ip', ['netns', 'exec', ns, 'conntrack', '-L']).ok);
      assert.equal(report.features.xfrm.available, succeeds('ip', ['-n', ns, 'xfrm', 'state']).ok);
      assert.equal(report.features.conntrack.available, true);
      assert.equal(report.features.xfrm.available, true);
    });

    it('has every feature, and every mode but ipvlan and vlan is available here', () => {
      assert.deepEqual(Object.keys(report.features), [...FEATURES]);
      for (const [mode, m] of Object.entries(report.modes)) {
        if (mode === 'ipvlan' || mode === 'vlan') {
          assert.deepEqual(m, { available: false, missing: [mode] });
        } else {
          assert.deepEqual(m, { available: true, missing: [] }, mode);
        }
      }
      assert.deepEqual(Object.keys(report.modes).sort(), ['bridge', 'container', 'host', 'ipvlan', 'macvlan', 'none', 'overlay', 'vlan']);
    });

    it('runs each nf_tables probe as its own transaction: one that fails hides none of the others', async () => {
      const ns = await makeNetns('dpr');
      // Taken names make two probes fail (EEXIST), as a missing kernel feature would.
      sh('nft', ['add table inet doctor_fib; add table bridge doctor_bridge'], ns);
      const out = await probeNftables(ns);
      assert.equal(out.nft_fib.available, false);
      assert.match(out.nft_fib.detail ?? '', /^EEXIST/u);
      assert.equal(out.nft_bridge.available, false);
      for (const f of NFT_FEATURES.filter((x) => x !== 'nft_fib' && x !== 'nft_bridge')) assert.equal(out[f].available, true, `${f}: ${out[f].detail}`);
      // What each probe claims, the kernel holds: its table, with the expressions it is about.
      const rules = nftJson(ns)
        .nftables.filter((o: any) => 'rule' in o)
        .map((o: any) => o.rule);
      const exprKinds = (table: string) => rules.filter((r: any) => r.table === table).flatMap((r: any) => r.expr.flatMap((e: any) => Object.keys(e)));
      assert.ok(exprKinds('doctor_masq').includes('masquerade'));
      assert.ok(exprKinds('doctor_redir').includes('redirect'));
      assert.ok(exprKinds('doctor_dnat').includes('dnat'));
      assert.ok(exprKinds('doctor_vmap').includes('vmap'));
      assert.equal(exprKinds('doctor_fib').length, 0);
    });

    it('creates the links it reports: a kind that fails hides none of the others', async () => {
      const ns = await makeNetns('dpl');
      sh('ip', ['-n', ns, 'link', 'add', 'dbr0', 'type', 'bridge']);
      const out = await probeLinks(ns);
      assert.equal(out.bridge.available, false);
      assert.match(out.bridge.detail ?? '', /^EEXIST/u);
      for (const k of ['veth', 'vxlan', 'macvlan'] as const) assert.equal(out[k].available, true, k);
      const kinds = new Map<string, string>(ipJson(['-d', 'link', 'show'], ns).map((l: any) => [l.ifname, l.linkinfo?.info_kind]));
      assert.equal(kinds.get('dv0'), 'veth');
      assert.equal(kinds.get('dvx0'), 'vxlan');
      assert.equal(kinds.get('dmv0'), 'macvlan');
      assert.equal(kinds.has('dipv0'), false);
    });
  });

  describe('host state', () => {
    it('flags a policy-drop forward chain of another table, by name, and stops when it is gone', async () => {
      const ns = await makeNetns('dfw');
      sysctlIn(ns, 'net.ipv4.ip_forward', '1');
      const clean = await doctor({ netns: ns });
      assert.deepEqual(clean.host.forwardDropChains, []);
      assert.deepEqual(warningsOf(clean, 'WARN_FORWARD_POLICY_DROP'), []);

      sh('nft', ['-f', '-'], ns, { input: 'table ip filter { chain FORWARD { type filter hook forward priority 0; policy drop; }; }' });
      const r = await doctor({ netns: ns });
      assert.deepEqual(r.host.forwardDropChains, [{ family: 'ip', table: 'filter', chain: 'FORWARD', priority: 0, type: 'filter' }]);
      const [w, ...more] = warningsOf(r, 'WARN_FORWARD_POLICY_DROP');
      assert.equal(more.length, 0);
      assert.ok(w);
      assert.match(w.message, /ip filter chain FORWARD/u);
      assert.match(w.message, /policy drop/u);
      assert.match(w.message, /inet nsnet/u);
      assert.match(w.message, /a drop in any base chain at the forward hook is final/iu);
      assert.deepEqual(w.chain, r.host.forwardDropChains[0]);
      // br_netfilter is on in a new namespace here: bridged traffic meets that chain too.
      assert.equal(sysctlIn(ns, 'net.bridge.bridge-nf-call-iptables'), '1');
      assert.equal(r.host.brNetfilter.callIptables, true);
      assert.equal(warningsOf(r, 'WARN_BR_NETFILTER').length, 1);
      assert.match(warningsOf(r, 'WARN_BR_NETFILTER')[0]!.message, /ip filter chain FORWARD/u);

      sysctlIn(ns, 'net.bridge.bridge-nf-call-iptables', '0');
      const off = await doctor({ netns: ns });
      assert.equal(off.host.brNetfilter.callIptables, false);
      assert.deepEqual(warningsOf(off, 'WARN_BR_NETFILTER'), []);
      assert.equal(warningsOf(off, 'WARN_FORWARD_POLICY_DROP').length, 1);

      sh('nft', ['delete', 'table', 'ip', 'filter'], ns);
      const after = await doctor({ netns: ns });
      assert.deepEqual(after.host.forwardDropChains, []);
      assert.deepEqual(after.warnings, []);
    });

    it("looks at every family, and not at accept policies, other hooks, dormant tables or nsnet's own tables", async () => {
      const ns = await makeNetns('dff');
      sh('nft', ['-f', '-'], ns, {
        input: [
          'table bridge l2 { chain fw { type filter hook forward priority 0; policy drop; }; }',
          'table ip6 f6 { chain fw { type filter hook forward priority 10; policy drop; }; }',
          'table inet ok { chain fw { type filter hook forward priority 0; policy accept; } ; chain inp { type filter hook input priority 0; policy drop; }; }',
          'table ip asleep { flags dormant; chain fw { type filter hook forward priority 0; policy drop; }; }',
          'table inet nsnet { chain forward { type filter hook forward priority 0; policy accept; }; }',
          'table bridge nsnet_l2 { }',
        ].join('\n'),
      });
      const r = await doctor({ netns: ns });
      const names = r.host.forwardDropChains.map((c) => `${c.family} ${c.table} ${c.chain}`).sort();
      assert.deepEqual(names, ['bridge l2 fw', 'ip6 f6 fw']);
      assert.deepEqual(r.host.nsnetTables, { inet: true, bridge: true });
      assert.equal(warningsOf(r, 'WARN_FORWARD_POLICY_DROP').length, 2);
      const bridgeWarn = warningsOf(r, 'WARN_FORWARD_POLICY_DROP').find((w) => w.chain?.family === 'bridge');
      assert.match(bridgeWarn?.message ?? '', /bridge l2 chain fw/u);
      // A bridge-family chain sees bridged frames anyway; the ip6 one only through br_netfilter.
      assert.deepEqual(
        warningsOf(r, 'WARN_BR_NETFILTER').map((w) => w.chain?.table),
        ['f6'],
      );
    });

    it('reflects ip_forward 0 and 1 (IPv4 and IPv6)', async () => {
      const ns = await makeNetns('dip');
      sysctlIn(ns, 'net.ipv4.ip_forward', '0');
      sysctlIn(ns, 'net.ipv6.conf.all.forwarding', '0');
      const off = await doctor({ netns: ns });
      assert.equal(off.host.ipForward, false);
      assert.equal(off.host.ipv6Forward, false);
      assert.equal(warningsOf(off, 'WARN_IP_FORWARD_OFF').length, 1);
      assert.match(warningsOf(off, 'WARN_IP_FORWARD_OFF')[0]!.message, /net\.ipv4\.ip_forward is 0/u);

      sysctlIn(ns, 'net.ipv4.ip_forward', '1');
      sysctlIn(ns, 'net.ipv6.conf.all.forwarding', '1');
      const on = await doctor({ netns: ns });
      assert.equal(on.host.ipForward, true);
      assert.equal(on.host.ipv6Forward, true);
      assert.deepEqual(warningsOf(on, 'WARN_IP_FORWARD_OFF'), []);
    });

    it("names the IPv6 networks of nsnet's firewall when IPv6 forwarding is off, and RA-learned routes that forwarding lets expire", async () => {
      const ns = await makeNetns('d6w');
      const { Firewall } = await import('../../lib/firewall/index');
      const fw = await Firewall.open({ netns: ns });
      try {
        await fw.ensure();
        await fw.addNetwork({ name: 'v6net', bridge: 'br6', subnet: '172.29.0.0/24', subnet6: 'fd00:29::/64' });
        await fw.addNetwork({ name: 'v4net', bridge: 'br4', subnet: '172.28.0.0/24' });
      } finally {
        fw.close();
      }
      sysctlIn(ns, 'net.ipv4.ip_forward', '1');
      sysctlIn(ns, 'net.ipv6.conf.all.forwarding', '0');
      const off = await doctor({ netns: ns });
      assert.deepEqual(off.host.ipv6Networks, ['v6net']);
      assert.equal(warningsOf(off, 'WARN_IPV6_FORWARD_OFF').length, 1);
      assert.match(warningsOf(off, 'WARN_IPV6_FORWARD_OFF')[0]!.message, /\(v6net\)/u);
      sysctlIn(ns, 'net.ipv6.conf.all.forwarding', '1');
      // A default route as router advertisements install it (proto ra), on an interface with accept_ra 1.
      sh('ip', ['-n', ns, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1']);
      sh('ip', ['-n', ns, 'link', 'set', 'up0', 'up']);
      sh('ip', ['-n', ns, 'link', 'set', 'up1', 'up']);
      sh('ip', ['-n', ns, '-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', 'up0', 'proto', 'ra']);
      sysctlIn(ns, 'net.ipv6.conf.up0.accept_ra', '1');
      const on = await doctor({ netns: ns });
      assert.deepEqual(warningsOf(on, 'WARN_IPV6_FORWARD_OFF'), []);
      assert.deepEqual(on.host.raRoutes, ['up0']);
      assert.match(warningsOf(on, 'WARN_IPV6_ACCEPT_RA')[0]?.message ?? '', /net\.ipv6\.conf\.up0\.accept_ra=2/u);
      sysctlIn(ns, 'net.ipv6.conf.up0.accept_ra', '2');
      const fixed = await doctor({ netns: ns });
      assert.deepEqual(fixed.host.raRoutes, []);
      assert.deepEqual(fixed.warnings, []);
    });
  });

  describe('state directory', () => {
    let tmp: string;
    beforeEach(() => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-doctor-state-'));
    });
    afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

    it('lists every damaged document, one WARN_STORE_DAMAGED warning each (naming the file), and changes none', async () => {
      const store = await FileStore.open({ dir: tmp });
      await store.update((tx) => {
        tx.put('networks', 'app', {
          name: 'app',
          driver: 'bridge',
          subnet: '172.20.0.0/16',
          gateway: '172.20.0.1',
          bridge: 'br-app',
          labels: {},
          created: 'x',
        });
        tx.put('networks', 'web', {
          name: 'web',
          driver: 'bridge',
          subnet: '172.21.0.0/16',
          gateway: '172.21.0.1',
          bridge: 'br-web',
          labels: {},
          created: 'x',
        });
        tx.put('endpoints', 'app/c1', { id: 'c1', network: 'app', ports: [], created: 'x' });
        tx.put('ports', 'tcp:8080', [{ holder: 'app/c1' }]);
      });
      await store.close();
      const damaged = [
        [path.join(tmp, 'endpoints', 'app%2Fc1.json'), '{"trunc', 'not valid JSON (truncated?)'],
        [
          path.join(tmp, 'networks', 'web.json'),
          JSON.stringify({ key: 'web', value: { name: 'other' } }),
          'not the record of network web (its name is "other")',
        ],
        [path.join(tmp, 'ports', 'tcp%3A8080.json'), '', 'empty file'],
      ];
      for (const [f, text] of damaged) fs.writeFileSync(f!, text!);
      const r = await doctor({ netns: await makeNetns('dst'), stateDir: tmp });
      assert.deepEqual(r.store, {
        dir: tmp,
        exists: true,
        readable: true,
        damaged: [
          { collection: 'endpoints', key: 'app/c1', file: damaged[0]![0], reason: damaged[0]![2] },
          { collection: 'networks', key: 'web', file: damaged[1]![0], reason: damaged[1]![2] },
          { collection: 'ports', key: 'tcp:8080', file: damaged[2]![0], reason: damaged[2]![2] },
        ],
      });
      const found = warningsOf(r, 'WARN_STORE_DAMAGED');
      assert.deepEqual(
        found.map((w) => w.file),
        damaged.map(([f]) => f),
      );
      assert.deepEqual(
        found.map((w) => w.document),
        r.store!.damaged,
      );
      assert.match(found[0]!.message, /endpoint c1 of network app is left out of listings, and what needs it fails with ERR_STORE_CORRUPT; `nsnet gc`/u);
      for (const [f, text] of damaged) assert.equal(fs.readFileSync(f!, 'utf8'), text);
    });

    it('a directory without a store is reported as such and not created; `stateDir: false` looks at none; a corrupt journal is WARN_STORE_UNREADABLE', async () => {
      const ns = await makeNetns('dst');
      const none = path.join(tmp, 'nothing-here');
      const r = await doctor({ netns: ns, stateDir: none });
      assert.deepEqual(r.store, { dir: none, exists: false, readable: true, damaged: [] });
      assert.equal(fs.existsSync(none), false);
      assert.equal((await doctor({ netns: ns, stateDir: false })).store, undefined);
      await (await FileStore.open({ dir: tmp })).close();
      fs.writeFileSync(path.join(tmp, 'journal.json'), '{"format":1,"ops":[');
      const bad = await doctor({ netns: ns, stateDir: tmp });
      assert.equal(bad.store!.readable, false);
      assert.match(bad.store!.detail!, /^ERR_STORE_CORRUPT: /u);
      assert.deepEqual(
        warningsOf(bad, 'WARN_STORE_UNREADABLE').map((w) => w.file),
        [path.join(tmp, 'journal.json')],
      );
      for (const stateDir of ['', 5, true]) {
        await assert.rejects(doctor({ netns: ns, stateDir } as never), (e: unknown) => e instanceof NsnetError && e.code === 'ERR_INVALID_ARGUMENT');
      }
    });
  });

  describe('leaves no trace', () => {
    it('changes nothing in the inspected namespace and leaves no scratch namespace behind', async () => {
      const ns = await makeNetns('dun');
      sh('ip', ['-n', ns, 'link', 'add', 'br9', 'type', 'bridge']);
      sh('ip', ['-n', ns, 'link', 'add', 'v9', 'type', 'veth', 'peer', 'name', 'v9p']);
      sh('ip', ['-n', ns, 'link', 'set', 'v9', 'master', 'br9', 'up']);
      sh('nft', ['-f', '-'], ns, {
        input:
          'table inet keep { set s { type ipv4_addr; elements = { 10.0.0.1 }; }; chain f { type filter hook forward priority 0; policy drop; ip saddr @s accept; }; }',
      });
      sysctlIn(ns, 'net.ipv4.ip_forward', '1');
      const snapshot = () => ({
        links: ipJson(['-d', 'link', 'show'], ns),
        addrs: ipJson(['addr', 'show'], ns),
        ruleset: nftJson(ns),
        forward: sysctlIn(ns, 'net.ipv4.ip_forward'),
        namespaces: sh('ip', ['netns', 'list']),
      });
      const before = snapshot();
      const r = await doctor({ netns: ns });
      assert.equal(r.netns.inode, fs.statSync(`/var/run/netns/${ns}`).ino);
      assert.equal(r.host.forwardDropChains.length, 1);
      assert.deepEqual(snapshot(), before);
      assert.deepEqual(leftovers(), []);
      // ... and the default: the caller's own namespace (the sandbox's) is inspected, unchanged.
      const mine = snapshotSelf();
      const self = await doctor();
      assert.equal(self.netns.inode, fs.statSync('/proc/self/ns/net').ino);
      assert.deepEqual(snapshotSelf(), mine);
      assert.deepEqual(leftovers(), []);
    });

    it('refuses a namespace that does not exist, before making any', async () => {
      await assert.rejects(doctor({ netns: 'no-such-ns-doctor' }), (e: unknown) => e instanceof NsnetError && e.code === 'ERR_NETNS_NOT_FOUND');
      await assert.rejects(doctor({ bogus: 1 } as never), (e: unknown) => e instanceof NsnetError && e.code === 'ERR_INVALID_ARGUMENT');
      assert.deepEqual(leftovers(), []);
    });
  });
});

/** The caller's (the sandbox's) links and ruleset. */
function snapshotSelf(): unknown {
  return { links: ipJson(['-d', 'link', 'show']), ruleset: nftJson() };
}
