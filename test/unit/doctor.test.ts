/**
 * doctor()'s pure parts: the nf_tables probes cover every expression, set and chain kind of
 * nsnet's firewall layout; the modes follow from the features; the warnings from the host
 * state.
 */
import * as assert from 'node:assert/strict';
import { CHAINS, RULES, SETS } from '../../lib/firewall/layout';
import { FEATURES, NFT_PROBES, firewallFeatures, type FeatureName, type FeatureProbe } from '../../lib/doctor/features';
import { modesOf, warningsOf } from '../../lib/doctor';
import type { HostState } from '../../lib/doctor/host-state';
import { Transaction } from '../../lib/nftables/transaction';
import type { Expr } from '../../lib/nftables/expr/types';
import type { ChainSpec, MapSpec, SetSpec } from '../../lib/nftables/types';

/** What kind of thing an expression asks of the kernel (its module and mode). */
function exprSig(e: Expr): string {
  switch (e.type) {
    case 'meta':
    case 'ct':
      return `${e.type} ${String(e.key)}`;
    case 'payload':
      return `payload ${e.base}`;
    case 'lookup':
      return `lookup${e.dreg === undefined ? '' : e.dreg === 0 ? ' vmap' : ' map'}${e.invert ? ' invert' : ''}`;
    case 'nat':
      return `nat ${e.kind} ${e.family}`;
    case 'fib':
      return `fib ${e.result} ${(e.flags ?? []).join(',')}`;
    case 'cmp':
      return `cmp ${e.op}`;
    case 'immediate':
      return `immediate ${'verdict' in e ? JSON.stringify(e.verdict) : 'data'}`;
    default:
      return e.type;
  }
}
function setSig(s: SetSpec | MapSpec): string {
  const value = 'value' in s ? (s.value === 'verdict' ? ' vmap' : ' map') : '';
  return `${s.family} set${Array.isArray(s.key) && s.key.length > 1 ? ' concat' : ''}${s.interval ? ' interval' : ''}${value}`;
}
const chainSig = (c: ChainSpec): string => `${c.family} ${c.type ?? 'regular'} ${c.hook ?? ''}`;

describe('doctor: what the probes cover', () => {
  const probed = { expr: new Set<string>(), set: new Set<string>(), chain: new Set<string>() };
  before(() => {
    for (const probe of Object.values(NFT_PROBES)) {
      const tx = new Transaction();
      probe(tx);
      for (const op of tx.ops) {
        if (op.kind === 'addRule') for (const e of op.spec.expr) probed.expr.add(exprSig(e));
        if (op.kind === 'addSet') probed.set.add(setSig(op.spec));
        if (op.kind === 'addChain') probed.chain.add(chainSig(op.spec));
      }
    }
  });

  it("every expression of the firewall's rules is probed on its own, in the same form", () => {
    const used = new Set(RULES.flatMap((r) => r.expr.map(exprSig)));
    assert.ok(used.size > 10);
    assert.deepEqual(
      [...used].filter((s) => !probed.expr.has(s)),
      [],
    );
  });

  it('every kind of set and map and every kind of chain of the firewall is probed on its own', () => {
    assert.deepEqual(
      SETS.map((s) => setSig(s.spec)).filter((s) => !probed.set.has(s)),
      [],
    );
    assert.deepEqual(
      CHAINS.map(chainSig).filter((s) => !probed.chain.has(s)),
      [],
    );
  });

  it("derives bridge mode's nf_tables needs from the layout", () => {
    assert.deepEqual(firewallFeatures(), [
      'nftables',
      'nft_nat',
      'nft_masquerade',
      'nft_dnat',
      'nft_nat_ipv6',
      'nft_ct',
      'nft_fib',
      'nft_concat_sets',
      'nft_interval_sets',
      'nft_concat_interval_sets',
      'nft_bridge',
      'nsnet_firewall',
    ]);
    // A layout with a verdict map or a redirect would need those probes too...
    const more = firewallFeatures({ rules: [{ expr: [{ type: 'redir' }, { type: 'lookup', set: 'm', sreg: 1, dreg: 0 }] }], sets: [], chains: [] });
    assert.deepEqual(more, ['nftables', 'nft_redirect', 'nft_verdict_maps', 'nsnet_firewall']);
    // ... and one no probe covers is refused rather than silently assumed available.
    assert.throws(() => firewallFeatures({ rules: [{ expr: [{ type: 'log' }] }], sets: [], chains: [] }), /no probe covers the firewall's log expression/u);
  });
});

const all = (over: Partial<Record<FeatureName, FeatureProbe>> = {}): Record<FeatureName, FeatureProbe> =>
  Object.fromEntries(FEATURES.map((f) => [f, over[f] ?? { available: true }])) as Record<FeatureName, FeatureProbe>;

describe('doctor: modes', () => {
  it('are all available when every feature is', () => {
    for (const m of Object.values(modesOf(all()))) assert.deepEqual(m, { available: true, missing: [] });
  });

  it('name exactly what each lacks', () => {
    const no = { available: false, detail: 'EOPNOTSUPP' };
    const m = modesOf(all({ nft_fib: no, vxlan: no, ipvlan: no, xfrm: no }));
    assert.deepEqual(m.bridge, { available: false, missing: ['nft_fib'] });
    assert.deepEqual(m.overlay, { available: false, missing: ['nft_fib', 'vxlan'] });
    assert.deepEqual(m.ipvlan, { available: false, missing: ['ipvlan'] });
    for (const k of ['host', 'none', 'container', 'macvlan'] as const) assert.equal(m[k].available, true, k);
    assert.deepEqual(modesOf(all({ conntrack: no })).bridge.missing, ['conntrack']);
    assert.deepEqual(modesOf(all({ macvlan: no })).macvlan.missing, ['macvlan']);
    const nons = modesOf(all({ netns: no }));
    for (const k of Object.keys(nons) as (keyof typeof nons)[]) assert.ok(nons[k].missing.includes('netns'), k);
  });
});

describe('doctor: warnings', () => {
  const host = (over: Partial<HostState> = {}): HostState => ({
    ipForward: true,
    brNetfilter: { loaded: true, callIptables: false, callIp6tables: false },
    ruleset: { available: true },
    forwardDropChains: [],
    nsnetTables: { inet: false, bridge: false },
    ipv6Networks: [],
    raRoutes: [],
    ...over,
  });
  const codes = (h: HostState) => warningsOf(h).map((w) => `${w.code}${w.chain ? ` ${w.chain.family} ${w.chain.table}` : ''}`);

  it('none for a healthy host', () => {
    assert.deepEqual(warningsOf(host()), []);
  });

  it('ip_forward off, said differently once nsnet has networks here', () => {
    const [w] = warningsOf(host({ ipForward: false }));
    assert.equal(w?.code, 'WARN_IP_FORWARD_OFF');
    const [w2] = warningsOf(host({ ipForward: false, nsnetTables: { inet: true, bridge: true } }));
    assert.match(w2?.message ?? '', /something turned it off/u);
  });

  it('IPv6 forwarding off only matters when nsnet has IPv6 networks; RA-learned routes only when forwarding is on', () => {
    assert.deepEqual(codes(host({ ipv6Forward: false })), []);
    const [w] = warningsOf(host({ ipv6Forward: false, ipv6Networks: ['v6', 'web'] }));
    assert.equal(w?.code, 'WARN_IPV6_FORWARD_OFF');
    assert.match(w!.message, /\(v6, web\)/u);
    assert.deepEqual(codes(host({ ipv6Forward: false, raRoutes: ['eth0'] })), []);
    const [ra] = warningsOf(host({ ipv6Forward: true, raRoutes: ['eth0'] }));
    assert.equal(ra?.code, 'WARN_IPV6_ACCEPT_RA');
    assert.match(ra!.message, /net\.ipv6\.conf\.eth0\.accept_ra=2/u);
  });

  it('a policy-drop forward chain; br_netfilter only when it makes the chain see bridged traffic of its family', () => {
    const chains = [
      { family: 'ip' as const, table: 'filter', chain: 'FORWARD', priority: 0, type: 'filter' },
      { family: 'ip6' as const, table: 'filter6', chain: 'FORWARD', priority: 0 },
      { family: 'bridge' as const, table: 'l2', chain: 'fw', priority: -200 },
    ];
    assert.deepEqual(codes(host({ forwardDropChains: chains })), [
      'WARN_FORWARD_POLICY_DROP ip filter',
      'WARN_FORWARD_POLICY_DROP ip6 filter6',
      'WARN_FORWARD_POLICY_DROP bridge l2',
    ]);
    assert.deepEqual(
      codes(host({ forwardDropChains: chains, brNetfilter: { loaded: true, callIptables: true, callIp6tables: false } })).filter((c) =>
        c.startsWith('WARN_BR'),
      ),
      ['WARN_BR_NETFILTER ip filter'],
    );
    assert.deepEqual(
      codes(host({ forwardDropChains: chains, brNetfilter: { loaded: true, callIptables: false, callIp6tables: true } })).filter((c) =>
        c.startsWith('WARN_BR'),
      ),
      ['WARN_BR_NETFILTER ip6 filter6'],
    );
    const inet = [{ family: 'inet' as const, table: 'fw', chain: 'forward', priority: 0 }];
    assert.deepEqual(codes(host({ forwardDropChains: inet, brNetfilter: { loaded: true, callIp6tables: true } })), [
      'WARN_FORWARD_POLICY_DROP inet fw',
      'WARN_BR_NETFILTER inet fw',
    ]);
    assert.match(warningsOf(host({ forwardDropChains: chains }))[0]!.message, /^ip filter chain FORWARD \(hook forward, priority 0\) has policy drop/u);
  });
});
