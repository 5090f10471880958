/**
 * nf_tables against the kernel. Everything NfTables creates is checked with an independent
 * oracle, the `nft` tool (`nft -j list ruleset`, compared as structures; `nft list ruleset` text
 * where byte-for-byte equality is the point), and with real TCP traffic between namespaces the
 * test made (client, router, server). Rulesets written by `nft -f` (test/fixtures/ruleset.nft)
 * are read back with list() and rebuilt through a transaction in another namespace; `nft -j`
 * must list both the same. Every test builds its own namespaces, torn down afterwards.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Netns, NetlinkError, NfTables, NsnetError } from '../../lib/index';
import type { ElementSpec, Expr, Family, MapSpec, Ruleset, SetSpec, Transaction } from '../../lib/index';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';
import { nftJson, sh } from '../helpers/oracle';

const FIXTURE = path.resolve(__dirname, '../../../test/fixtures/ruleset.nft');

// ------------------------------------------------------------------------------------ helpers

/** `ip -n NS ...`: world building, independent of the code under test. */
function ip(ns: string, ...args: string[]): void {
  sh('ip', ['-n', ns, ...args]);
}

/** Opens an NfTables handle in `ns`, closed at teardown (before the namespace goes). */
async function openNft(ns: string): Promise<NfTables> {
  const nft = await NfTables.open({ netns: ns });
  registerCleanup(() => nft.close(), `close nftables handle in ${ns}`);
  return nft;
}

/** `nft list ruleset` text: the byte-for-byte oracle. */
function nftText(ns: string): string {
  return sh('nft', ['list', 'ruleset'], ns);
}

/** The nft -j objects of one kind ('rule', 'set', 'map', 'chain', 'table'). */
function objects(json: any, kind: string): any[] {
  return (json.nftables as any[]).filter((o) => kind in o).map((o) => o[kind]);
}

/** The `expr` arrays of the rules of one chain, in order (nft -j). */
function ruleExprs(json: any, family: string, table: string, chain: string): any[] {
  return objects(json, 'rule')
    .filter((r) => r.family === family && r.table === table && r.chain === chain)
    .map((r) => r.expr);
}

function findObj(json: any, kind: string, family: string, table: string, name: string): any {
  const o = objects(json, kind).find((x) => x.family === family && x.table === table && x.name === name);
  assert.ok(o, `nft -j lists no ${kind} ${family} ${table} ${name}`);
  return o;
}

const sortByJson = (xs: unknown[]): unknown[] => [...xs].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

/**
 * nft -j output made comparable across namespaces: no metainfo, no handles (kernel-assigned),
 * no `expires` (time-dependent), and the elements of each set in a stable order (hash sets list
 * them in an order that depends on a per-set random seed).
 */
function normalize(json: any): any {
  const strip = (v: any): any => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === 'object') {
      const out: any = {};
      for (const [k, x] of Object.entries(v)) if (k !== 'handle' && k !== 'expires') out[k] = strip(x);
      return out;
    }
    return v;
  };
  return (json.nftables as any[])
    .filter((o) => !('metainfo' in o))
    .map((o) => {
      const s = strip(o);
      for (const kind of ['set', 'map']) if (s[kind]?.elem) s[kind].elem = sortByJson(s[kind].elem);
      return s;
    });
}

/** A ruleset from list() made comparable: no handles, no expirations, elements sorted. */
function normalizeList(rs: Ruleset): unknown {
  const noHandle = <T extends { handle: number }>(x: T): Omit<T, 'handle'> => {
    const { handle: _h, ...rest } = x;
    return rest;
  };
  return JSON.parse(
    JSON.stringify({
      tables: rs.tables.map(noHandle),
      chains: rs.chains.map(noHandle),
      rules: rs.rules.map(noHandle),
      sets: rs.sets.map((s) => ({ ...noHandle(s), elements: sortByJson(s.elements.map(({ expiration: _e, ...e }) => e)) })),
    }),
  );
}

const LE = os.endianness() === 'LE';
/** A host-order u32 as nft_data bytes (fib results, ct state/status bits, marks). */
function u32h(n: number): Buffer {
  const b = Buffer.alloc(4);
  if (LE) b.writeUInt32LE(n);
  else b.writeUInt32BE(n);
  return b;
}
/** An interface name as a 16-byte (IFNAMSIZ) register value. */
function ifname(name: string): Buffer {
  const b = Buffer.alloc(16);
  b.write(name);
  return b;
}
const be16 = (n: number): Buffer => Buffer.from([n >> 8, n & 255]);

// Kernel uapi numbers, written out here so the test does not use the library's tables.
const NFPROTO_IPV4 = 2;
const RTN_LOCAL = 2;
const CT_ESTABLISHED = 2;
const CT_RELATED = 4;
const IPS_DST_NAT = 0x20;
const IPPROTO_TCP = 6;

/** `ct state <bits>`: ct load, mask, non-zero. */
function ctState(bits: number): Expr[] {
  return [
    { type: 'ct', key: 'state', dreg: 1 },
    { type: 'bitwise', op: 'mask_xor', sreg: 1, dreg: 1, len: 4, mask: u32h(bits), xor: u32h(0) },
    { type: 'cmp', op: 'neq', sreg: 1, data: u32h(0) },
  ];
}
/** `meta nfproto ipv4` (the dependency nft puts before `ip ...` matches in an inet table). */
const nfprotoIpv4: Expr[] = [
  { type: 'meta', key: 'nfproto', dreg: 1 },
  { type: 'cmp', op: 'eq', sreg: 1, data: Buffer.from([NFPROTO_IPV4]) },
];
/** `ip saddr` into register 1. */
const ipSaddr: Expr = { type: 'payload', base: 'network', offset: 12, len: 4, dreg: 1 };
/** `fib daddr type local`. */
const fibLocal: Expr[] = [
  { type: 'fib', flags: ['daddr'], result: 'addrtype', dreg: 1 },
  { type: 'cmp', op: 'eq', sreg: 1, data: u32h(RTN_LOCAL) },
];
/** `dnat ip to meta l4proto . th dport map @<map>` (registers as nft uses them). */
function dnatMap(map: string): Expr[] {
  return [
    { type: 'meta', key: 'l4proto', dreg: 1 },
    { type: 'payload', base: 'transport', offset: 2, len: 2, dreg: 9 },
    { type: 'lookup', set: map, sreg: 1, dreg: 1 },
    { type: 'nat', kind: 'dnat', family: 'ip', regAddrMin: 1, regProtoMin: 9 },
  ];
}
/** `ip saddr @<set> oifname != "<dev>" masquerade`. */
function masqBySet(set: string, notDev: string, counter = false): Expr[] {
  return [
    ...nfprotoIpv4,
    ipSaddr,
    { type: 'lookup', set, sreg: 1 },
    { type: 'meta', key: 'oifname', dreg: 1 },
    { type: 'cmp', op: 'neq', sreg: 1, data: ifname(notDev) },
    ...(counter ? [{ type: 'counter' } as Expr] : []),
    { type: 'masq' },
  ];
}
const accept: Expr = { type: 'immediate', verdict: 'accept' };

/** Asserts that `p` rejects with a validation NsnetError (not from the kernel) of this code. */
async function rejectsInvalid(p: Promise<unknown>, code: string, message?: RegExp): Promise<NsnetError> {
  let err: unknown;
  await assert.rejects(p, (e: unknown) => {
    err = e;
    return true;
  });
  assert.ok(err instanceof NsnetError, `expected an NsnetError, got ${String(err)}`);
  assert.ok(!(err instanceof NetlinkError), `expected a validation error before the kernel, got ${err.message}`);
  assert.equal(err.code, code, err.message);
  if (message) assert.match(err.message, message);
  return err;
}

/** Asserts that `p` rejects with the kernel's NetlinkError for operation #index of the batch. */
async function rejectsAt(p: Promise<unknown>, code: string, index: number, op: string): Promise<NetlinkError> {
  let err: unknown;
  await assert.rejects(p, (e: unknown) => {
    err = e;
    return true;
  });
  assert.ok(err instanceof NetlinkError, `expected a NetlinkError, got ${String(err)}`);
  assert.equal(err.code, code, err.message);
  assert.equal(err.index, index, `index of the failing operation (${err.message})`);
  assert.equal(err.details.op, op, err.message);
  assert.ok(err.errno > 0);
  assert.match(err.operation, /^NFT_MSG_/u);
  assert.match(err.message, new RegExp(`#${index} \\(${op}`, 'u'), 'the message names the operation');
  if (err.extack !== undefined) {
    assert.equal(typeof err.extack, 'string');
    assert.ok(err.extack.length > 0);
    assert.ok(err.message.includes(err.extack), 'the extended-ACK text is in the message');
  }
  return err;
}

// ------------------------------------------------------------------------------------ traffic

/** Starts a TCP server in `ns` that answers each connection with the peer's address; stopped at teardown. */
async function peerEchoServer(ns: string, port: number): Promise<void> {
  const server = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      `
    const s = require('net').createServer((c) => c.end(c.remoteAddress + '\\n'));
    s.on('error', (e) => { console.error(e.message); process.exit(2); });
    s.listen(${port}, '0.0.0.0', () => console.log('ready'));
    setTimeout(() => process.exit(0), 600000);`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  registerCleanup(() => server.kill(), `stop TCP server in ${ns}`);
  const ready = await new Promise<boolean>((resolve) => {
    server.stdout.once('data', () => resolve(true));
    server.once('exit', () => resolve(false));
  });
  assert.ok(ready, `the TCP server in ${ns} did not start`);
}

/** One TCP connection from `ns` to addr:port: what the server said, or why it failed. Bounded. */
function tcpAsk(ns: string, addr: string, port: number, timeoutMs = 3000): { ok: boolean; data?: string; error?: string } {
  const r = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      `
    const c = require('net').connect(${port}, ${JSON.stringify(addr)});
    let d = ''; c.on('data', (x) => { d += x; });
    c.on('end', () => { console.log(JSON.stringify({ ok: true, data: d.trim() })); process.exit(0); });
    c.on('error', (e) => { console.log(JSON.stringify({ ok: false, error: e.code })); process.exit(0); });
    setTimeout(() => { console.log(JSON.stringify({ ok: false, error: 'timeout' })); process.exit(0); }, ${timeoutMs});`,
    ],
    { encoding: 'utf8', timeout: timeoutMs + 5000 },
  );
  assert.equal(r.status, 0, `TCP client in ${ns} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
}

// ------------------------------------------------------------------------------------ rebuild

/** Replays a listed ruleset through one transaction: tables, chains, sets with elements, rules. */
function rebuild(tx: Transaction, rs: Ruleset): void {
  for (const t of rs.tables) tx.addTable({ family: t.family, name: t.name });
  for (const c of rs.chains) {
    if (c.hook === undefined) tx.addChain({ family: c.family, table: c.table, name: c.name });
    else
      tx.addChain({
        family: c.family,
        table: c.table,
        name: c.name,
        type: c.type as 'filter' | 'nat' | 'route',
        hook: c.hook,
        ...(c.priority !== undefined ? { priority: c.priority } : {}),
        ...(c.policy ? { policy: c.policy } : {}),
        ...(c.device !== undefined ? { device: c.device } : {}),
      });
  }
  for (const s of rs.sets) {
    assert.ok(s.key, `set ${s.name}: list() knows its key type`);
    const spec: SetSpec = { family: s.family, table: s.table, name: s.name, key: s.key.length === 1 ? s.key[0]! : s.key };
    if (s.interval) spec.interval = true;
    if (s.timeout !== undefined) spec.timeout = s.timeout;
    if (s.flags.includes('constant')) spec.constant = true;
    if (s.map) {
      assert.ok(s.value, `map ${s.name}: list() knows its value type`);
      const value = s.value === 'verdict' ? 'verdict' : s.value.length === 1 ? s.value[0]! : s.value;
      tx.addMap({ ...spec, value } as MapSpec);
    } else tx.addSet(spec);
  }
  // Elements after every chain exists (verdict maps jump to chains).
  for (const s of rs.sets) {
    if (s.elements.length === 0) continue;
    tx.addElements({
      family: s.family,
      table: s.table,
      set: s.name,
      elements: s.elements.map((e) => {
        const out: ElementSpec = { key: e.key as ElementSpec['key'] };
        if (e.value !== undefined) out.value = e.value as ElementSpec['value'];
        if (e.verdict !== undefined) out.verdict = e.verdict;
        if (e.timeout !== undefined) out.timeout = e.timeout;
        if (e.comment !== undefined) out.comment = e.comment;
        return out;
      }),
    });
  }
  for (const r of rs.rules)
    tx.addRule({ family: r.family, table: r.table, chain: r.chain, expr: r.expr, ...(r.comment !== undefined ? { comment: r.comment } : {}) });
}

// ====================================================================================== tests

describe('nftables (kernel)', function () {
  useSandbox();
  this.timeout(120000);

  describe('what the API creates, nft -j lists exactly as intended', () => {
    it('DNAT through a concatenated map, masquerade by source set, ct state, interval set, vmap, counters', async () => {
      const ns = await makeNetns('nj');
      const nft = await openNft(ns);
      const T = { family: 'inet' as const, table: 'fw' };
      const res = await nft.transaction((tx) => {
        tx.addTable({ family: 'inet', name: 'fw' });
        tx.addChain({ ...T, name: 'pre', type: 'nat', hook: 'prerouting', priority: -100, policy: 'accept' });
        tx.addChain({ ...T, name: 'post', type: 'nat', hook: 'postrouting', priority: 100, policy: 'accept' });
        tx.addChain({ ...T, name: 'fwd', type: 'filter', hook: 'forward', priority: 0, policy: 'drop' });
        tx.addChain({ ...T, name: 'from_br0' });
        tx.addMap({ ...T, name: 'ports', key: ['inet_proto', 'inet_service'], value: ['ipv4_addr', 'inet_service'] });
        tx.addElements({
          ...T,
          set: 'ports',
          elements: [
            { key: ['tcp', 8080], value: ['172.20.0.2', 80], comment: 'ep:c1' },
            { key: ['udp', 5353], value: ['172.20.0.3', 53] },
          ],
        });
        tx.addSet({ ...T, name: 'subnets', key: 'ipv4_addr', interval: true });
        tx.addElements({
          ...T,
          set: 'subnets',
          elements: [{ key: '10.0.0.0/8' }, { key: '192.168.1.0/24' }, { key: { from: '172.16.0.5', to: '172.16.0.9' } }, { key: '198.51.100.7' }],
        });
        tx.addMap({ ...T, name: 'v', key: 'ifname', value: 'verdict' });
        tx.addElements({
          ...T,
          set: 'v',
          elements: [
            { key: 'br0', verdict: { jump: 'from_br0' } },
            { key: 'eth9', verdict: 'drop' },
          ],
        });
        tx.addRule({ ...T, chain: 'pre', comment: 'publish', expr: [...fibLocal, { type: 'counter' }, ...dnatMap('ports')] });
        tx.addRule({ ...T, chain: 'post', expr: masqBySet('subnets', 'br0') });
        tx.addRule({ ...T, chain: 'fwd', expr: [...ctState(CT_ESTABLISHED | CT_RELATED), accept] });
        tx.addRule({
          ...T,
          chain: 'fwd',
          expr: [
            { type: 'meta', key: 'iifname', dreg: 1 },
            { type: 'lookup', set: 'v', sreg: 1, dreg: 0 },
          ],
        });
        tx.addRule({ ...T, chain: 'from_br0', expr: [{ type: 'counter' }, accept] });
      });
      assert.ok(res.messages >= 16, `one message per object at least, got ${res.messages}`);

      const j = nftJson(ns);
      // Tables and chains.
      assert.deepEqual(
        objects(j, 'table').map((t) => [t.family, t.name]),
        [['inet', 'fw']],
      );
      const chains = objects(j, 'chain').map(({ handle: _h, ...c }) => c);
      assert.deepEqual(chains, [
        { family: 'inet', table: 'fw', name: 'pre', type: 'nat', hook: 'prerouting', prio: -100, policy: 'accept' },
        { family: 'inet', table: 'fw', name: 'post', type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' },
        { family: 'inet', table: 'fw', name: 'fwd', type: 'filter', hook: 'forward', prio: 0, policy: 'drop' },
        { family: 'inet', table: 'fw', name: 'from_br0' },
      ]);

      // The map: concatenated key and value types, elements with their comment.
      const ports = findObj(j, 'map', 'inet', 'fw', 'ports');
      assert.deepEqual(ports.type, ['inet_proto', 'inet_service']);
      assert.equal(ports.map, 'ipv4_addr . inet_service');
      assert.deepEqual(
        sortByJson(ports.elem),
        sortByJson([
          [{ elem: { val: { concat: ['tcp', 8080] }, comment: 'ep:c1' } }, { concat: ['172.20.0.2', 80] }],
          [{ concat: ['udp', 5353] }, { concat: ['172.20.0.3', 53] }],
        ]),
      );

      // The interval set: prefixes, a range, a single address.
      const subnets = findObj(j, 'set', 'inet', 'fw', 'subnets');
      assert.equal(subnets.type, 'ipv4_addr');
      assert.deepEqual(subnets.flags, ['interval']);
      assert.deepEqual(
        sortByJson(subnets.elem),
        sortByJson([
          { prefix: { addr: '10.0.0.0', len: 8 } },
          { prefix: { addr: '192.168.1.0', len: 24 } },
          { range: ['172.16.0.5', '172.16.0.9'] },
          '198.51.100.7',
        ]),
      );

      // The verdict map keyed by interface name.
      const v = findObj(j, 'map', 'inet', 'fw', 'v');
      assert.equal(v.type, 'ifname');
      assert.equal(v.map, 'verdict');
      assert.deepEqual(
        sortByJson(v.elem),
        sortByJson([
          ['br0', { jump: { target: 'from_br0' } }],
          ['eth9', { drop: null }],
        ]),
      );

      // The rules, statement by statement.
      const pre = objects(j, 'rule').filter((r) => r.chain === 'pre');
      assert.equal(pre.length, 1);
      assert.equal(pre[0].comment, 'publish');
      assert.deepEqual(pre[0].expr, [
        { match: { op: '==', left: { fib: { result: 'type', flags: ['daddr'] } }, right: 'local' } },
        { counter: { packets: 0, bytes: 0 } },
        {
          dnat: {
            family: 'ip',
            addr: { map: { key: { concat: [{ meta: { key: 'l4proto' } }, { payload: { protocol: 'th', field: 'dport' } }] }, data: '@ports' } },
          },
        },
      ]);
      assert.deepEqual(ruleExprs(j, 'inet', 'fw', 'post'), [
        [
          { match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: '@subnets' } },
          { match: { op: '!=', left: { meta: { key: 'oifname' } }, right: 'br0' } },
          { masquerade: null },
        ],
      ]);
      assert.deepEqual(ruleExprs(j, 'inet', 'fw', 'fwd'), [
        [{ match: { op: 'in', left: { ct: { key: 'state' } }, right: ['established', 'related'] } }, { accept: null }],
        [{ vmap: { key: { meta: { key: 'iifname' } }, data: '@v' } }],
      ]);
      assert.deepEqual(ruleExprs(j, 'inet', 'fw', 'from_br0'), [[{ counter: { packets: 0, bytes: 0 } }, { accept: null }]]);

      // And list() decodes the same objects back to what was written.
      const rs = await nft.list({ family: 'inet', table: 'fw' });
      const rule = (chain: string) => rs.rules.filter((r) => r.chain === chain).map((r) => r.expr);
      assert.deepEqual(rule('pre'), [[...fibLocal, { type: 'counter' }, ...dnatMap('ports')]]);
      assert.deepEqual(rule('post'), [masqBySet('subnets', 'br0')]);
      assert.equal(rs.rules.find((r) => r.chain === 'pre')?.comment, 'publish');
      const set = (name: string) => rs.sets.find((s) => s.name === name)!;
      assert.deepEqual(
        sortByJson(set('ports').elements),
        sortByJson([
          { key: ['tcp', 8080], value: ['172.20.0.2', 80], comment: 'ep:c1' },
          { key: ['udp', 5353], value: ['172.20.0.3', 53] },
        ]),
      );
      assert.deepEqual(
        sortByJson(set('subnets').elements.map((e) => e.key)),
        sortByJson(['10.0.0.0/8', '192.168.1.0/24', { from: '172.16.0.5', to: '172.16.0.9' }, '198.51.100.7']),
      );
      assert.deepEqual(
        sortByJson(set('v').elements),
        sortByJson([
          { key: 'br0', verdict: { jump: 'from_br0' } },
          { key: 'eth9', verdict: 'drop' },
        ]),
      );
      assert.deepEqual(await nft.getElement({ ...T, set: 'ports', key: ['tcp', 8080] }), { key: ['tcp', 8080], value: ['172.20.0.2', 80], comment: 'ep:c1' });
      assert.equal(await nft.getElement({ ...T, set: 'ports', key: ['tcp', 9999] }), undefined);
    });

    it('a rule counter counts real traffic, in nft -j and in list()', async () => {
      const ns = await makeNetns('nc');
      const nft = await openNft(ns);
      const T = { family: 'inet' as const, table: 'cnt' };
      await nft.transaction((tx) => {
        tx.addTable({ family: 'inet', name: 'cnt' });
        tx.addChain({ ...T, name: 'in', type: 'filter', hook: 'input', priority: 0 });
        // tcp dport 7777 counter
        tx.addRule({
          ...T,
          chain: 'in',
          expr: [
            { type: 'meta', key: 'l4proto', dreg: 1 },
            { type: 'cmp', op: 'eq', sreg: 1, data: Buffer.from([IPPROTO_TCP]) },
            { type: 'payload', base: 'transport', offset: 2, len: 2, dreg: 1 },
            { type: 'cmp', op: 'eq', sreg: 1, data: be16(7777) },
            { type: 'counter' },
          ],
        });
      });
      const counterOf = (j: any) => ruleExprs(j, 'inet', 'cnt', 'in')[0].find((s: any) => 'counter' in s).counter;
      assert.deepEqual(counterOf(nftJson(ns)), { packets: 0, bytes: 0 });
      const listed0 = (await nft.list({ family: 'inet', table: 'cnt' })).rules[0]!.expr.at(-1);
      assert.deepEqual(listed0, { type: 'counter' }, 'a zero counter decodes without values');

      await peerEchoServer(ns, 7777);
      for (let i = 0; i < 3; i++) assert.equal(tcpAsk(ns, '127.0.0.1', 7777).data, '127.0.0.1');

      const c = counterOf(nftJson(ns));
      assert.ok(c.packets >= 9, `three connections make at least 9 packets to port 7777, nft -j says ${c.packets}`);
      assert.ok(c.bytes > c.packets * 40, `bytes (${c.bytes}) beyond headers only`);
      const listed = (await nft.list({ family: 'inet', table: 'cnt' })).rules[0]!.expr.at(-1) as { type: string; packets?: number; bytes?: number };
      assert.equal(listed.type, 'counter');
      assert.equal(listed.packets, c.packets, 'list() reads the counter nft -j shows');
      assert.equal(listed.bytes, c.bytes);
    });
  });

  describe('the decoder reads rulesets written by nft -f', () => {
    it('fixture: nft -f into A, list(), rebuild in B through one transaction: nft -j of A and B are equal', async () => {
      const A = await makeNetns('fxa');
      const B = await makeNetns('fxb');
      sh('nft', ['-f', FIXTURE], A);
      const a = await openNft(A);
      const b = await openNft(B);
      const rs = await a.list();
      assert.deepEqual(
        rs.tables.map((t) => `${t.family} ${t.name}`),
        ['inet nsnet', 'ip6 filter6', 'ip legacy', 'bridge l2', 'netdev edge'],
      );
      // Every expression has a typed form but byteorder (nft puts one before a concatenated
      // interval lookup of a host-order field), which has no codec: it must decode as an
      // unknown expression with its raw attributes and be written back as it was.
      const unknown = rs.rules.flatMap((r) => r.expr.filter((e) => e.type === 'unknown').map((e) => (e as { name: string }).name));
      assert.deepEqual(unknown, ['byteorder']);
      await b.transaction((tx) => rebuild(tx, rs));

      const ja = normalize(nftJson(A));
      const jb = normalize(nftJson(B));
      assert.ok(ja.length > 60, `the fixture lists many objects (${ja.length})`);
      assert.deepEqual(jb, ja);
      // And the decoder agrees with itself on both.
      assert.deepEqual(normalizeList(await b.list()), normalizeList(rs));
    });

    it('fixture: decoded expressions, chains and sets are what nft -f wrote', async () => {
      const A = await makeNetns('fxd');
      sh('nft', ['-f', FIXTURE], A);
      const a = await openNft(A);
      const rs = await a.list();
      const rules = (table: string, chain: string) => rs.rules.filter((r) => r.table === table && r.chain === chain);
      const fwd = rules('nsnet', 'forward');

      // ct state established,related accept: ct + bitwise + cmp, then the verdict.
      assert.deepEqual(fwd[0]!.expr, [...ctState(CT_ESTABLISHED | CT_RELATED), accept]);
      // ct status dnat accept, with its comment.
      assert.deepEqual(fwd[2]!.expr, [
        { type: 'ct', key: 'status', dreg: 1 },
        { type: 'bitwise', op: 'mask_xor', sreg: 1, dreg: 1, len: 4, mask: u32h(IPS_DST_NAT), xor: u32h(0) },
        { type: 'cmp', op: 'neq', sreg: 1, data: u32h(0) },
        accept,
      ]);
      assert.equal(fwd[2]!.comment, 'published ports');
      // iifname vmap @isolation: a lookup into the verdict register.
      assert.deepEqual(fwd[4]!.expr, [
        { type: 'meta', key: 'iifname', dreg: 1 },
        { type: 'lookup', set: 'isolation', sreg: 1, dreg: 0 },
      ]);
      // The published-port DNAT through the two-field map.
      assert.deepEqual(rules('nsnet', 'prerouting')[1]!.expr, [...fibLocal, ...dnatMap('published')]);
      // Masquerade by source set, the bridge names as a set, inverted.
      assert.deepEqual(rules('nsnet', 'postrouting')[1]!.expr, [
        ...nfprotoIpv4,
        ipSaddr,
        { type: 'lookup', set: 'subnets', sreg: 1 },
        { type: 'meta', key: 'oifname', dreg: 1 },
        { type: 'lookup', set: 'bridges', sreg: 1, invert: true },
        { type: 'counter' },
        { type: 'masq' },
      ]);
      // masquerade to :1024-65535 fully-random
      assert.deepEqual(rules('nsnet', 'postrouting')[3]!.expr.slice(-3), [
        { type: 'immediate', dreg: 1, data: be16(1024) },
        { type: 'immediate', dreg: 2, data: be16(65535) },
        { type: 'masq', flags: ['proto_random_fully'], regProtoMin: 1, regProtoMax: 2 },
      ]);
      // Jumps and gotos.
      assert.deepEqual(rules('nsnet', 'input')[5]!.expr.at(-1), { type: 'immediate', verdict: { jump: 'from_br0' } });
      assert.deepEqual(rules('nsnet', 'from_br0')[2]!.expr, [{ type: 'immediate', verdict: 'return' }]);
      // log / limit / reject.
      assert.deepEqual(fwd[3]!.expr.slice(-2), [
        { type: 'log', prefix: 'nsnet blocked: ', level: 'info' },
        { type: 'immediate', verdict: 'drop' },
      ]);
      assert.ok(fwd[5]!.expr.some((e) => e.type === 'limit' && e.rate === 100 && e.unit === 1 && e.burst === 20 && e.kind === 'pkts'));
      assert.deepEqual(fwd[7]!.expr.at(-1), { type: 'reject', kind: 'icmpx_unreach', icmpCode: 3 });
      // dnat to 10.0.0.2:8080 in an ip table.
      assert.deepEqual(rules('legacy', 'pre')[0]!.expr.slice(-3), [
        { type: 'immediate', dreg: 1, data: Buffer.from([10, 0, 0, 2]) },
        { type: 'immediate', dreg: 2, data: be16(8080) },
        { type: 'nat', kind: 'dnat', family: 'ip', regAddrMin: 1, regProtoMin: 2 },
      ]);

      // Chains: priorities (filter + 10), policies, the netdev device.
      const chain = (table: string, name: string) => rs.chains.find((c) => c.table === table && c.name === name)!;
      assert.deepEqual([chain('nsnet', 'input').hook, chain('nsnet', 'input').priority, chain('nsnet', 'input').policy], ['input', 10, 'accept']);
      assert.deepEqual([chain('nsnet', 'forward').type, chain('nsnet', 'forward').policy], ['filter', 'drop']);
      assert.deepEqual([chain('nsnet', 'prerouting').type, chain('nsnet', 'prerouting').priority], ['nat', -100]);
      assert.equal(chain('nsnet', 'from_br0').hook, undefined);
      assert.deepEqual(
        [chain('edge', 'ingress').family, chain('edge', 'ingress').hook, chain('edge', 'ingress').device, chain('edge', 'ingress').priority],
        ['netdev', 'ingress', 'lo', -500],
      );

      // Sets and maps: types and elements.
      const set = (name: string) => rs.sets.find((s) => s.name === name)!;
      assert.deepEqual(
        sortByJson(set('published').elements),
        sortByJson([
          { key: ['tcp', 8080], value: ['172.20.0.2', 80], comment: 'ep:web1' },
          { key: ['tcp', 8443], value: ['172.20.0.2', 443], comment: 'ep:web1' },
          { key: ['udp', 5353], value: ['172.20.0.3', 53] },
        ]),
      );
      assert.deepEqual(set('published_hostip').key, ['ipv4_addr', 'inet_proto', 'inet_service']);
      assert.deepEqual(set('published_hostip').elements, [{ key: ['192.0.2.10', 'tcp', 2222], value: ['172.20.0.4', 22], comment: 'ep:ssh' }]);
      assert.deepEqual(
        sortByJson(set('subnets').elements.map((e) => e.key)),
        sortByJson(['172.17.0.0/16', '172.20.0.0/24', '10.88.0.0/16', { from: '192.168.100.10', to: '192.168.100.20' }]),
      );
      assert.deepEqual(sortByJson(set('trusted6').elements.map((e) => e.key)), sortByJson(['2001:db8::/48', 'fd00:20::/64']));
      assert.deepEqual(
        sortByJson(set('port_ranges').elements.map((e) => e.key)),
        sortByJson([
          ['tcp', { from: 30000, to: 30100 }],
          ['udp', { from: 40000, to: 40010 }],
        ]),
      );
      assert.deepEqual(sortByJson(set('admin_macs').elements.map((e) => e.key)), ['02:42:ac:14:00:02', '02:42:ac:14:00:03']);
      assert.deepEqual(
        sortByJson(set('marks').elements),
        sortByJson([
          { key: 1, value: '172.20.0.2' },
          { key: 2, value: '172.20.0.3' },
        ]),
      );
      assert.deepEqual(
        sortByJson(set('isolation').elements),
        sortByJson([
          { key: 'br0', verdict: { jump: 'from_br0' } },
          { key: 'nsnet0', verdict: { goto: 'from_nsnet0' } },
          { key: 'podman1', verdict: 'accept' },
          { key: 'quarantine', verdict: 'drop' },
        ]),
      );
      assert.equal(set('recent').timeout, 3600000);
      const recent = set('recent').elements.find((e) => e.key === '198.51.100.1')!;
      assert.equal(recent.timeout, 600000);
      assert.ok(recent.expiration! > 0 && recent.expiration! <= 600000);
    });

    it('anonymous sets written by nft -f decode as lookups into flagged sets with their elements', async () => {
      const A = await makeNetns('fxn');
      sh('nft', ['-f', '-'], A, {
        input:
          [
            'table inet anon {',
            '  chain in {',
            '    type filter hook input priority 0;',
            '    tcp dport { 22, 80, 443 } accept',
            '    ip daddr { 10.0.0.0/8, 192.168.0.0/16 } drop',
            '    iifname vmap { "lo" : accept, "eth0" : drop }',
            '  }',
            '}',
          ].join('\n') + '\n',
      });
      const a = await openNft(A);
      const rs = await a.list({ family: 'inet', table: 'anon' });
      const anon = rs.sets.filter((s) => s.flags.includes('anonymous'));
      assert.equal(anon.length, 3);
      for (const s of anon) assert.ok(s.flags.includes('constant'), `${s.name} is constant`);
      const lookups = rs.rules.map((r) => r.expr.find((e) => e.type === 'lookup') as { set: string; dreg?: number });
      const setOf = (i: number) => rs.sets.find((s) => s.name === lookups[i]!.set)!;
      assert.match(lookups[0]!.set, /^__set\d+$/u);
      assert.deepEqual(setOf(0).key, ['inet_service']);
      assert.deepEqual(
        setOf(0)
          .elements.map((e) => e.key)
          .sort(),
        [22, 443, 80],
      );
      assert.ok(setOf(1).interval);
      assert.deepEqual(sortByJson(setOf(1).elements.map((e) => e.key)), ['10.0.0.0/8', '192.168.0.0/16']);
      assert.equal(lookups[2]!.dreg, 0);
      assert.deepEqual(
        sortByJson(setOf(2).elements),
        sortByJson([
          { key: 'lo', verdict: 'accept' },
          { key: 'eth0', verdict: 'drop' },
        ]),
      );
    });

    it('adjacent intervals (172.18.0.0/16, 172.19.0.0/16; ports 1000-2000, 2001) decode as nft lists them', async () => {
      // Two Docker-style networks side by side are the common case for the masquerade set.
      const A = await makeNetns('fxi');
      sh('nft', ['-f', '-'], A, {
        input:
          [
            'table inet adj {',
            '  set nets { type ipv4_addr; flags interval; elements = { 172.18.0.0/16, 172.19.0.0/16, 172.21.0.0/16 } }',
            '  set ports { type inet_service; flags interval; elements = { 1000-2000, 2001, 2002-2010 } }',
            '}',
          ].join('\n') + '\n',
      });
      const nets = findObj(nftJson(A), 'set', 'inet', 'adj', 'nets');
      assert.equal(nets.elem.length, 3, 'nft keeps them as three elements');
      const a = await openNft(A);
      const rs = await a.list({ family: 'inet', table: 'adj' });
      const keys = (name: string) => sortByJson(rs.sets.find((s) => s.name === name)!.elements.map((e) => e.key));
      assert.deepEqual(keys('nets'), sortByJson(['172.18.0.0/16', '172.19.0.0/16', '172.21.0.0/16']));
      assert.deepEqual(keys('ports'), sortByJson([{ from: 1000, to: 2000 }, 2001, { from: 2002, to: 2010 }]));
    });

    it('a CIDR inside a concatenated interval key decodes as the CIDR nft lists (what was written)', async () => {
      // The published-ports map with ranges: host address (or any: 0.0.0.0/0) . proto . port range.
      const A = await makeNetns('fxc');
      sh('nft', ['-f', '-'], A, {
        input:
          [
            'table inet cc {',
            '  map pub {',
            '    type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; flags interval',
            '    elements = { 0.0.0.0/0 . udp . 53 : 172.20.0.3 . 53, 192.0.2.0/24 . tcp . 8000-8100 : 172.20.0.2 . 80 }',
            '  }',
            '}',
          ].join('\n') + '\n',
      });
      const pub = findObj(nftJson(A), 'map', 'inet', 'cc', 'pub');
      assert.deepEqual(
        sortByJson(pub.elem.map((e: any) => e[0].concat[0])),
        sortByJson([{ prefix: { addr: '0.0.0.0', len: 0 } }, { prefix: { addr: '192.0.2.0', len: 24 } }]),
      );
      const a = await openNft(A);
      const els = await a.elements({ family: 'inet', table: 'cc', set: 'pub' });
      assert.deepEqual(
        sortByJson(els),
        sortByJson([
          { key: ['0.0.0.0/0', 'udp', 53], value: ['172.20.0.3', 53] },
          { key: ['192.0.2.0/24', 'tcp', { from: 8000, to: 8100 }], value: ['172.20.0.2', 80] },
        ]),
      );
    });

    it('getElement() on an interval set returns the enclosing interval', async () => {
      const A = await makeNetns('fxg');
      const a = await openNft(A);
      const T = { family: 'inet' as const, table: 'g' };
      await a.transaction((tx) => {
        tx.addTable({ family: 'inet', name: 'g' });
        tx.addSet({ ...T, name: 'nets', key: 'ipv4_addr', interval: true });
        tx.addElements({ ...T, set: 'nets', elements: [{ key: '10.0.0.0/8', comment: 'ten' }, { key: '192.168.0.1' }, { key: '224.0.0.0/3' }] });
      });
      // The oracle: nft get element answers with the enclosing interval.
      assert.match(sh('nft', ['get', 'element', 'inet', 'g', 'nets', '{ 10.1.2.3 }'], A), /elements = \{ 10\.0\.0\.0\/8 \}/u);
      assert.deepEqual(
        await a.getElement({ ...T, set: 'nets', key: '230.1.1.1' }),
        { key: '224.0.0.0/3' },
        'an interval that runs to the end of the key space',
      );
      assert.equal(await a.getElement({ ...T, set: 'nets', key: '11.0.0.1' }), undefined);
      assert.deepEqual(await a.getElement({ ...T, set: 'nets', key: '10.1.2.3' }), { key: '10.0.0.0/8', comment: 'ten' });
      assert.deepEqual(await a.getElement({ ...T, set: 'nets', key: '192.168.0.1' }), { key: '192.168.0.1' });
    });
  });

  describe('traffic through rules built by the API', () => {
    it('DNAT forwards a real TCP connection; masquerade shows the router as source; deleting the element stops it', async () => {
      const C = await makeNetns('tc');
      const R = await makeNetns('tr');
      const S = await makeNetns('ts');
      // client c0 10.61.1.2 — rc 10.61.1.1 [router] rs 10.61.2.1 — s0 10.61.2.2 server
      ip(R, 'link', 'add', 'rc', 'type', 'veth', 'peer', 'name', 'c0', 'netns', C);
      ip(R, 'link', 'add', 'rs', 'type', 'veth', 'peer', 'name', 's0', 'netns', S);
      ip(R, 'addr', 'add', '10.61.1.1/24', 'dev', 'rc');
      ip(R, 'addr', 'add', '10.61.2.1/24', 'dev', 'rs');
      ip(C, 'addr', 'add', '10.61.1.2/24', 'dev', 'c0');
      ip(S, 'addr', 'add', '10.61.2.2/24', 'dev', 's0');
      for (const [ns, dev] of [
        [R, 'rc'],
        [R, 'rs'],
        [C, 'c0'],
        [S, 's0'],
      ] as const)
        ip(ns, 'link', 'set', dev, 'up');
      ip(C, 'route', 'add', 'default', 'via', '10.61.1.1');
      ip(S, 'route', 'add', 'default', 'via', '10.61.2.1');
      assert.equal(await Netns.sysctl(R, 'net.ipv4.ip_forward', 1), '1');
      await peerEchoServer(S, 80);
      assert.equal(tcpAsk(C, '10.61.2.2', 80).data, '10.61.1.2', 'sanity: routed without NAT, the server sees the client');
      assert.equal(tcpAsk(C, '10.61.1.1', 8080).ok, false, 'sanity: nothing answers on the router port before the DNAT');

      const nft = await openNft(R);
      const T = { family: 'inet' as const, table: 'nat' };
      await nft.transaction((tx) => {
        tx.addTable({ family: 'inet', name: 'nat' });
        tx.addChain({ ...T, name: 'pre', type: 'nat', hook: 'prerouting', priority: -100, policy: 'accept' });
        tx.addChain({ ...T, name: 'post', type: 'nat', hook: 'postrouting', priority: 100, policy: 'accept' });
        tx.addChain({ ...T, name: 'fwd', type: 'filter', hook: 'forward', priority: 0, policy: 'drop' });
        tx.addMap({ ...T, name: 'ports', key: ['inet_proto', 'inet_service'], value: ['ipv4_addr', 'inet_service'] });
        tx.addElements({ ...T, set: 'ports', elements: [{ key: ['tcp', 8080], value: ['10.61.2.2', 80], comment: 'ep:web' }] });
        tx.addSet({ ...T, name: 'subnets', key: 'ipv4_addr', interval: true });
        tx.addElements({ ...T, set: 'subnets', elements: [{ key: '10.61.1.0/24' }] });
        tx.addRule({ ...T, chain: 'pre', expr: [...fibLocal, { type: 'counter' }, ...dnatMap('ports')] });
        // forward policy drop: only replies and DNATed connections pass.
        tx.addRule({ ...T, chain: 'fwd', expr: [...ctState(CT_ESTABLISHED | CT_RELATED), accept] });
        tx.addRule({
          ...T,
          chain: 'fwd',
          expr: [
            { type: 'ct', key: 'status', dreg: 1 },
            { type: 'bitwise', op: 'mask_xor', sreg: 1, dreg: 1, len: 4, mask: u32h(IPS_DST_NAT), xor: u32h(0) },
            { type: 'cmp', op: 'neq', sreg: 1, data: u32h(0) },
            accept,
          ],
        });
      });
      assert.equal(tcpAsk(C, '10.61.2.2', 80, 1500).ok, false, 'the forward policy drops connections that were not DNATed');

      // DNAT: the router's port 8080 reaches the server's port 80; the server sees the client.
      assert.deepEqual(tcpAsk(C, '10.61.1.1', 8080), { ok: true, data: '10.61.1.2' });
      const counter = ruleExprs(nftJson(R), 'inet', 'nat', 'pre')[0].find((s: any) => 'counter' in s).counter;
      assert.equal(counter.packets, 1, 'a NAT chain sees the first packet of a connection only');

      // Masquerade by source set: the server now sees the router's address.
      await nft.transaction((tx) => void tx.addRule({ ...T, chain: 'post', expr: masqBySet('subnets', 'rc', true) }));
      assert.deepEqual(tcpAsk(C, '10.61.1.1', 8080), { ok: true, data: '10.61.2.1' });
      const masqCounter = ruleExprs(nftJson(R), 'inet', 'nat', 'post')[0].find((s: any) => 'counter' in s).counter;
      assert.equal(masqCounter.packets, 1);
      const listed = (await nft.list({ family: 'inet', table: 'nat' })).rules.find((r) => r.chain === 'pre')!.expr.find((e) => e.type === 'counter');
      assert.equal((listed as { packets?: number } | undefined)?.packets, 2, 'list() counts both connections');

      // Deleting the map element stops the forwarding.
      await nft.transaction((tx) => void tx.deleteElements({ ...T, set: 'ports', elements: [{ key: ['tcp', 8080] }] }));
      assert.equal(await nft.getElement({ ...T, set: 'ports', key: ['tcp', 8080] }), undefined);
      const after = tcpAsk(C, '10.61.1.1', 8080);
      assert.equal(after.ok, false, `no forwarding after the element is gone (got ${JSON.stringify(after)})`);
      assert.ok(after.error === 'ECONNREFUSED' || after.error === 'timeout', String(after.error));
    });
  });

  describe('a rejected transaction changes nothing and names the failing operation', () => {
    let ns: string;
    let nft: NfTables;
    const T = { family: 'inet' as const, table: 'base' };

    before(async () => {
      ns = await makeNetns('rj');
      nft = await openNft(ns);
      await nft.transaction((tx) => {
        tx.addTable({ family: 'inet', name: 'base' });
        tx.addChain({ ...T, name: 'in', type: 'filter', hook: 'input', priority: 0, policy: 'accept' });
        tx.addChain({ ...T, name: 'sub' });
        tx.addSet({ ...T, name: 'hosts', key: 'ipv4_addr' });
        tx.addElements({ ...T, set: 'hosts', elements: [{ key: '192.0.2.1' }] });
        tx.addMap({ ...T, name: 'ports', key: ['inet_proto', 'inet_service'], value: ['ipv4_addr', 'inet_service'] });
        tx.addElements({ ...T, set: 'ports', elements: [{ key: ['tcp', 1], value: ['10.0.0.1', 1] }] });
        tx.addRule({ ...T, chain: 'in', expr: [{ type: 'counter' }, { type: 'immediate', verdict: { jump: 'sub' } }] });
      });
    });

    /** Runs `fn`, expects it to fail, and checks the ruleset text and generation did not move. */
    async function unchanged<E>(fn: () => Promise<E>): Promise<E> {
      const text = nftText(ns);
      const gen = await nft.generation();
      const out = await fn();
      assert.equal(nftText(ns), text, 'nft list ruleset is byte-for-byte what it was');
      assert.equal(await nft.generation(), gen, 'the generation did not change');
      return out;
    }

    it('a rule for a missing chain, after operations that would have worked: ENOENT at that operation', async () => {
      await unchanged(() =>
        rejectsAt(
          nft.transaction((tx) => {
            tx.addTable({ family: 'ip', name: 'fresh' });
            tx.addChain({ family: 'ip', table: 'fresh', name: 'c' });
            tx.addRule({ ...T, chain: 'nochain', expr: [{ type: 'counter' }] });
          }),
          'ENOENT',
          2,
          'addRule',
        ),
      );
      assert.ok(!objects(nftJson(ns), 'table').some((t) => t.name === 'fresh'), 'the table of the failed batch does not exist');
    });

    it('a jump to a missing chain: ENOENT', async () => {
      await unchanged(() =>
        rejectsAt(
          nft.transaction((tx) => {
            tx.addChain({ ...T, name: 'other' });
            tx.addRule({ ...T, chain: 'in', expr: [{ type: 'immediate', verdict: { jump: 'missing' } }] });
          }),
          'ENOENT',
          1,
          'addRule',
        ),
      );
    });

    it('a duplicate table: EEXIST at the second addTable', async () => {
      await unchanged(() =>
        rejectsAt(
          nft.transaction((tx) => {
            tx.addTable({ family: 'inet', name: 'fresh2' });
            tx.addTable({ family: 'inet', name: 'base' });
          }),
          'EEXIST',
          1,
          'addTable',
        ),
      );
    });

    it('an element for a set deleted earlier in the batch: ENOENT at the element operation', async () => {
      await unchanged(() =>
        rejectsAt(
          nft.transaction((tx) => {
            tx.deleteSet({ ...T, name: 'hosts' });
            tx.addElements({ ...T, set: 'hosts', elements: [{ key: '192.0.2.9' }] });
          }),
          'ENOENT',
          1,
          'addElements',
        ),
      );
    });

    it('an element for a set that does not exist: ERR_SET_NOT_FOUND before the kernel', async () => {
      const e = await unchanged(() =>
        rejectsInvalid(
          nft.transaction((tx) => {
            tx.addTable({ family: 'ip', name: 'fresh3' });
            tx.addElements({ ...T, set: 'nosuch', elements: [{ key: '192.0.2.9' }] });
          }),
          'ERR_SET_NOT_FOUND',
        ),
      );
      assert.equal(e.details.set, 'nosuch');
    });

    it('a duplicate element after 5,000 good ones (several messages): EEXIST, index of the operation, not the message', async () => {
      const many = Array.from({ length: 5000 }, (_, i) => ({ key: ['udp', 10000 + i], value: ['10.0.0.2', 80] }));
      await unchanged(() =>
        rejectsAt(
          nft.transaction((tx) => {
            tx.addElements({ ...T, set: 'ports', elements: many });
            tx.addElements({ ...T, set: 'hosts', elements: [{ key: '192.0.2.1' }] });
          }),
          'EEXIST',
          1,
          'addElements',
        ),
      );
    });

    it('deleting an absent element, a rule by a bad handle, a chain in use: ENOENT, ENOENT, EBUSY', async () => {
      await unchanged(() =>
        rejectsAt(
          nft.transaction((tx) => void tx.deleteElements({ ...T, set: 'hosts', elements: [{ key: '192.0.2.77' }] })),
          'ENOENT',
          0,
          'deleteElements',
        ),
      );
      await unchanged(() =>
        rejectsAt(
          nft.transaction((tx) => void tx.deleteRule({ ...T, chain: 'in', handle: 99999 })),
          'ENOENT',
          0,
          'deleteRule',
        ),
      );
      await unchanged(() =>
        rejectsAt(
          nft.transaction((tx) => void tx.replaceRule({ ...T, chain: 'in', handle: 99999, expr: [{ type: 'counter' }] })),
          'ENOENT',
          0,
          'replaceRule',
        ),
      );
      await unchanged(() =>
        rejectsAt(
          nft.transaction((tx) => void tx.deleteChain({ ...T, name: 'sub' })),
          'EBUSY',
          0,
          'deleteChain',
        ),
      );
    });

    it('masquerade in a filter chain: EOPNOTSUPP', async () => {
      await unchanged(() =>
        rejectsAt(
          nft.transaction((tx) => void tx.addRule({ ...T, chain: 'in', expr: [{ type: 'masq' }] })),
          'EOPNOTSUPP',
          0,
          'addRule',
        ),
      );
    });
  });

  describe('large batches and rule/set/table operations', () => {
    const T = { family: 'inet' as const, table: 'big' };
    const mapSpec = { ...T, name: 'pub', key: ['inet_proto', 'inet_service'], value: ['ipv4_addr', 'inet_service'] } as MapSpec;
    const element = (i: number) => ({
      key: [i % 2 ? 'udp' : 'tcp', 1024 + (i >> 1)] as [string, number],
      value: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 1 + (i % 60000)] as [string, number],
      comment: `ep:${i}`,
    });
    const ELEMENTS = Array.from({ length: 10000 }, (_, i) => element(i));
    const asSet = (els: { key: unknown; value?: unknown; comment?: string }[]) => new Set(els.map((e) => JSON.stringify([e.key, e.value, e.comment])));

    it('10,000 map elements in one transaction (bigger than the socket buffers); list() returns all 10,000', async () => {
      const ns = await makeNetns('bg');
      const nft = await openNft(ns);
      // Each element is at least 52 bytes of netlink attributes (key, value, comment nests).
      const wmem = Number(fs.readFileSync('/proc/sys/net/core/wmem_default', 'utf8'));
      const rmem = Number(fs.readFileSync('/proc/sys/net/core/rmem_default', 'utf8'));
      assert.ok(ELEMENTS.length * 52 > Math.max(wmem, rmem), 'the batch is larger than the default socket buffers');
      const res = await nft.transaction((tx) => {
        tx.addTable({ family: 'inet', name: 'big' });
        tx.addMap(mapSpec);
        tx.addElements({ ...T, set: 'pub', elements: ELEMENTS });
      });
      assert.ok(res.messages > 3, `the elements went in several messages (${res.messages})`);
      const got = await nft.elements({ ...T, set: 'pub' });
      assert.equal(got.length, 10000);
      assert.deepEqual(asSet(got), asSet(ELEMENTS));
      const j = findObj(nftJson(ns), 'map', 'inet', 'big', 'pub');
      assert.equal(j.elem.length, 10000, 'nft -j lists 10,000 elements');
      const e7 = j.elem.find((x: any) => x[0]?.elem?.comment === 'ep:7');
      assert.deepEqual(e7, [{ elem: { val: { concat: ['udp', 1027] }, comment: 'ep:7' } }, { concat: ['10.0.0.7', 8] }]);
    });

    it('10,000 elements added in 100 transactions of 100, then deleted the same way', async () => {
      const ns = await makeNetns('bh');
      const nft = await openNft(ns);
      await nft.transaction((tx) => void tx.addTable({ family: 'inet', name: 'big' }).addMap(mapSpec));
      const gen0 = await nft.generation();
      for (let i = 0; i < 100; i++) await nft.transaction((tx) => void tx.addElements({ ...T, set: 'pub', elements: ELEMENTS.slice(i * 100, i * 100 + 100) }));
      assert.equal(await nft.generation(), gen0 + 100, 'one generation per transaction');
      const got = await nft.elements({ ...T, set: 'pub' });
      assert.equal(got.length, 10000);
      assert.deepEqual(asSet(got), asSet(ELEMENTS));
      for (let i = 0; i < 100; i++) {
        await nft.transaction(
          (tx) => void tx.deleteElements({ ...T, set: 'pub', elements: ELEMENTS.slice(i * 100, i * 100 + 100).map((e) => ({ key: e.key })) }),
        );
        if (i === 49) assert.equal((await nft.elements({ ...T, set: 'pub' })).length, 5000);
      }
      assert.deepEqual(await nft.elements({ ...T, set: 'pub' }), []);
      assert.equal(findObj(nftJson(ns), 'map', 'inet', 'big', 'pub').elem, undefined, 'nft -j lists no elements');
    });

    it('insertRule / addRule with position / replaceRule / deleteRule by handle, in nft -j order', async () => {
      const ns = await makeNetns('br');
      const nft = await openNft(ns);
      const R = { ...T, chain: 'c' };
      const rule = (comment: string) => ({ ...R, comment, expr: [{ type: 'counter' }] as Expr[] });
      const order = () =>
        objects(nftJson(ns), 'rule')
          .filter((r) => r.chain === 'c')
          .map((r) => r.comment);
      const handles = async () => Object.fromEntries((await nft.list({ family: 'inet', table: 'big' })).rules.map((r) => [r.comment, r.handle]));
      await nft.transaction((tx) => {
        tx.addTable({ family: 'inet', name: 'big' });
        tx.addChain({ ...T, name: 'c' });
        tx.addRule(rule('a')).addRule(rule('b')).addRule(rule('c'));
      });
      assert.deepEqual(order(), ['a', 'b', 'c']);
      let h = await handles();
      // nft -j agrees with list() on handles.
      assert.deepEqual(Object.fromEntries(objects(nftJson(ns), 'rule').map((r) => [r.comment, r.handle])), h);
      await nft.transaction((tx) => void tx.insertRule(rule('first')));
      assert.deepEqual(order(), ['first', 'a', 'b', 'c']);
      await nft.transaction((tx) => void tx.insertRule({ ...rule('before-b'), position: h.b! }).addRule({ ...rule('after-b'), position: h.b! }));
      assert.deepEqual(order(), ['first', 'a', 'before-b', 'b', 'after-b', 'c']);
      h = await handles();
      await nft.transaction((tx) => void tx.replaceRule({ ...R, handle: h.b!, comment: 'B', expr: [{ type: 'counter' }, accept] }));
      assert.deepEqual(order(), ['first', 'a', 'before-b', 'B', 'after-b', 'c']);
      const replaced = objects(nftJson(ns), 'rule').find((r) => r.comment === 'B');
      assert.equal(replaced.handle, h.b, 'replace keeps the handle');
      assert.deepEqual(replaced.expr, [{ counter: { packets: 0, bytes: 0 } }, { accept: null }]);
      await nft.transaction((tx) => void tx.deleteRule({ ...R, handle: h.a! }).deleteRule({ ...R, handle: h.c! }));
      assert.deepEqual(order(), ['first', 'before-b', 'B', 'after-b']);
    });

    it('flushSet, flushChain, flushTable, deleteSet, deleteChain, deleteTable', async () => {
      const ns = await makeNetns('bf');
      const nft = await openNft(ns);
      await nft.transaction((tx) => {
        tx.addTable({ family: 'inet', name: 'big' });
        tx.addChain({ ...T, name: 'c1' }).addChain({ ...T, name: 'c2' });
        tx.addMap(mapSpec).addElements({ ...T, set: 'pub', elements: ELEMENTS.slice(0, 300) });
        tx.addSet({ ...T, name: 'nets', key: 'ipv4_addr', interval: true }).addElements({
          ...T,
          set: 'nets',
          elements: [{ key: '10.0.0.0/8' }, { key: '192.168.0.0/16' }],
        });
        for (const c of ['c1', 'c2']) for (let i = 0; i < 3; i++) tx.addRule({ ...T, chain: c, expr: [{ type: 'counter' }] });
      });
      const rulesIn = (c?: string) => objects(nftJson(ns), 'rule').filter((r) => c === undefined || r.chain === c).length;
      assert.equal(rulesIn(), 6);
      await nft.transaction((tx) => void tx.flushSet({ ...T, name: 'pub' }).flushSet({ ...T, name: 'nets' }));
      assert.deepEqual(await nft.elements({ ...T, set: 'pub' }), []);
      assert.deepEqual(await nft.elements({ ...T, set: 'nets' }), []);
      assert.equal(findObj(nftJson(ns), 'set', 'inet', 'big', 'nets').elem, undefined);
      await nft.transaction((tx) => void tx.flushChain({ ...T, name: 'c1' }));
      assert.deepEqual([rulesIn('c1'), rulesIn('c2')], [0, 3]);
      await nft.transaction((tx) => void tx.flushTable({ family: 'inet', name: 'big' }));
      assert.equal(rulesIn(), 0);
      await nft.transaction((tx) => void tx.deleteSet({ ...T, name: 'nets' }).deleteChain({ ...T, name: 'c2' }));
      assert.deepEqual(
        objects(nftJson(ns), 'set').map((s) => s.name),
        [],
      );
      assert.deepEqual(
        objects(nftJson(ns), 'map').map((s) => s.name),
        ['pub'],
      );
      assert.deepEqual(
        objects(nftJson(ns), 'chain').map((c) => c.name),
        ['c1'],
      );
      await nft.transaction((tx) => void tx.deleteTable({ family: 'inet', name: 'big' }));
      assert.deepEqual(normalize(nftJson(ns)), []);
      assert.equal(nftText(ns), '');
      assert.deepEqual(await nft.list(), { tables: [], chains: [], rules: [], sets: [] });
    });

    it('ensureTable / ensureChain / ensureMap / ensureElements are idempotent', async () => {
      const ns = await makeNetns('be');
      const nft = await openNft(ns);
      const once = (tx: Transaction) => {
        tx.ensureTable({ family: 'inet', name: 'big' });
        tx.ensureChain({ ...T, name: 'c', type: 'filter', hook: 'input', priority: 0, policy: 'accept' });
        tx.ensureMap(mapSpec);
        tx.ensureElements({ ...T, set: 'pub', elements: ELEMENTS.slice(0, 10) });
      };
      await nft.transaction(once);
      const text = nftText(ns);
      await nft.transaction(once);
      assert.equal(nftText(ns), text);
      assert.equal((await nft.elements({ ...T, set: 'pub' })).length, 10);
    });
  });

  describe('bad input: typed errors, nothing changed', () => {
    let ns: string;
    let nft: NfTables;
    const T = { family: 'inet' as const, table: 'v' };

    before(async () => {
      ns = await makeNetns('bv');
      nft = await openNft(ns);
      await nft.transaction((tx) => {
        tx.addTable({ family: 'inet', name: 'v' });
        tx.addChain({ ...T, name: 'c' });
        tx.addSet({ ...T, name: 'hosts', key: 'ipv4_addr' });
        tx.addSet({ ...T, name: 'nets', key: 'ipv4_addr', interval: true });
        tx.addSet({ ...T, name: 'svc', key: 'inet_service' });
        tx.addMap({ ...T, name: 'pub', key: ['inet_proto', 'inet_service'], value: ['ipv4_addr', 'inet_service'] });
        tx.addMap({ ...T, name: 'vm', key: 'ifname', value: 'verdict' });
      });
    });

    /** Expects the transaction to fail validation with `code`; ruleset and generation unchanged. */
    async function refused(fn: (tx: Transaction) => void, code: string, message?: RegExp): Promise<void> {
      const text = nftText(ns);
      const gen = await nft.generation();
      await rejectsInvalid(
        nft.transaction((tx) => {
          tx.addTable({ family: 'ip', name: 'would_be_created' }); // a good operation first: it must not be applied either
          fn(tx);
        }),
        code,
        message,
      );
      assert.equal(nftText(ns), text);
      assert.equal(await nft.generation(), gen);
    }

    it('unknown family, bad hook, bad chain type or policy, unknown option', async () => {
      await refused((tx) => void tx.addTable({ family: 'ipx' as Family, name: 'x' }), 'ERR_INVALID_ARGUMENT', /family "ipx"/u);
      await refused((tx) => void tx.addChain({ family: 'foo' as Family, table: 'v', name: 'x' }), 'ERR_INVALID_ARGUMENT', /family/u);
      await refused(
        (tx) => void tx.addChain({ ...T, name: 'x', type: 'filter', hook: 'nohook' as 'input', priority: 0 }),
        'ERR_INVALID_ARGUMENT',
        /hook "nohook"/u,
      );
      await refused((tx) => void tx.addChain({ ...T, name: 'x', type: 'filter', hook: 'egress', priority: 0 }), 'ERR_INVALID_ARGUMENT', /hook "egress"/u);
      await refused(
        (tx) => void tx.addChain({ ...T, name: 'x', type: 'mangle' as 'filter', hook: 'input', priority: 0 }),
        'ERR_INVALID_ARGUMENT',
        /chain type/u,
      );
      await refused(
        (tx) => void tx.addChain({ ...T, name: 'x', type: 'filter', hook: 'input', priority: 0, policy: 'reject' as 'drop' }),
        'ERR_INVALID_ARGUMENT',
        /policy/u,
      );
      await refused((tx) => void tx.addChain({ ...T, name: 'x', policy: 'drop' }), 'ERR_INVALID_ARGUMENT', /need a hook/u);
      await refused((tx) => void tx.addTable({ family: 'inet', name: 'x', bogus: 1 } as never), 'ERR_INVALID_ARGUMENT', /bogus/u);
      await rejectsInvalid(nft.list({ family: 'nope' as Family }), 'ERR_INVALID_ARGUMENT');
    });

    it('names: too long, with "/", empty', async () => {
      await refused((tx) => void tx.addTable({ family: 'inet', name: 'x'.repeat(256) }), 'ERR_INVALID_NAME');
      await refused((tx) => void tx.addChain({ ...T, name: 'a/b' }), 'ERR_INVALID_NAME', /"a\/b"/u);
      await refused((tx) => void tx.addSet({ ...T, name: '', key: 'ipv4_addr' }), 'ERR_INVALID_NAME');
      await refused((tx) => void tx.addRule({ ...T, chain: 'c', expr: [{ type: 'immediate', verdict: { jump: 'x'.repeat(300) } }] }), 'ERR_INVALID_ARGUMENT');
      await refused(
        (tx) => void tx.addElements({ ...T, set: 'vm', elements: [{ key: 'x'.repeat(16), verdict: 'drop' }] }),
        'ERR_INVALID_NAME',
        /interface name/u,
      );
    });

    it('element keys of the wrong shape or type', async () => {
      await refused(
        (tx) => void tx.addElements({ ...T, set: 'pub', elements: [{ key: 'tcp', value: ['10.0.0.1', 80] }] }),
        'ERR_INVALID_ARGUMENT',
        /does not match inet_proto \. inet_service/u,
      );
      await refused((tx) => void tx.addElements({ ...T, set: 'pub', elements: [{ key: ['tcp', 80, 1], value: ['10.0.0.1', 80] }] }), 'ERR_INVALID_ARGUMENT');
      await refused(
        (tx) => void tx.addElements({ ...T, set: 'pub', elements: [{ key: ['tcpx', 80], value: ['10.0.0.1', 80] }] }),
        'ERR_INVALID_ARGUMENT',
        /protocol/u,
      );
      await refused((tx) => void tx.addElements({ ...T, set: 'pub', elements: [{ key: ['tcp', 80], value: '10.0.0.1' }] }), 'ERR_INVALID_ARGUMENT');
      await refused((tx) => void tx.addElements({ ...T, set: 'pub', elements: [{ key: ['tcp', 80] }] }), 'ERR_INVALID_ARGUMENT', /needs a value/u);
      await refused((tx) => void tx.addElements({ ...T, set: 'hosts', elements: [{ key: 'not-an-ip' }] }), 'ERR_INVALID_IP');
      await refused((tx) => void tx.addElements({ ...T, set: 'hosts', elements: [{ key: 'fd00::1' }] }), 'ERR_INVALID_IP', /IPv6/u);
      await refused(
        (tx) => void tx.addElements({ ...T, set: 'hosts', elements: [{ key: '10.0.0.1', value: '10.0.0.2' }] }),
        'ERR_INVALID_ARGUMENT',
        /not a map/u,
      );
      await refused((tx) => void tx.addElements({ ...T, set: 'vm', elements: [{ key: 'br0', verdict: 'maybe' as 'drop' }] }), 'ERR_INVALID_ARGUMENT');
      await refused((tx) => void tx.addSet({ ...T, name: 'x', key: 'ipv5_addr' as 'ipv4_addr' }), 'ERR_INVALID_ARGUMENT', /unknown data type/u);
      await refused((tx) => void tx.addRule({ ...T, chain: 'c', expr: [{ type: 'bogus' } as never] }), 'ERR_INVALID_ARGUMENT', /unknown expression type/u);
      await refused((tx) => void tx.addRule({ ...T, chain: 'c', expr: [] }), 'ERR_INVALID_ARGUMENT');
    });

    it('ports out of range: 70000, -1, 80.5, "80"', async () => {
      await refused((tx) => void tx.addElements({ ...T, set: 'svc', elements: [{ key: 70000 }] }), 'ERR_INVALID_ARGUMENT', /port.*70000/u);
      await refused((tx) => void tx.addElements({ ...T, set: 'svc', elements: [{ key: -1 }] }), 'ERR_INVALID_ARGUMENT', /port/u);
      await refused((tx) => void tx.addElements({ ...T, set: 'svc', elements: [{ key: 80.5 }] }), 'ERR_INVALID_ARGUMENT', /port/u);
      await refused((tx) => void tx.addElements({ ...T, set: 'svc', elements: [{ key: '80' }] }), 'ERR_INVALID_ARGUMENT', /port/u);
      await refused(
        (tx) => void tx.addElements({ ...T, set: 'pub', elements: [{ key: ['tcp', 80], value: ['10.0.0.1', 70000] }] }),
        'ERR_INVALID_ARGUMENT',
        /port.*70000/u,
      );
    });

    it('backwards range, CIDR or range in a non-interval set, bad prefix length', async () => {
      await refused(
        (tx) => void tx.addElements({ ...T, set: 'nets', elements: [{ key: { from: '10.0.0.9', to: '10.0.0.1' } }] }),
        'ERR_INVALID_ARGUMENT',
        /backwards/u,
      );
      await refused((tx) => void tx.addElements({ ...T, set: 'hosts', elements: [{ key: '10.0.0.0/8' }] }), 'ERR_INVALID_ARGUMENT', /interval/u);
      await refused(
        (tx) => void tx.addElements({ ...T, set: 'hosts', elements: [{ key: { from: '10.0.0.1', to: '10.0.0.2' } }] }),
        'ERR_INVALID_ARGUMENT',
        /interval/u,
      );
      await refused((tx) => void tx.addElements({ ...T, set: 'nets', elements: [{ key: '10.0.0.0/33' }] }), 'ERR_INVALID_CIDR');
    });

    it('a namespace that does not exist', async () => {
      await assert.rejects(NfTables.open({ netns: 'nsnet-no-such-netns' }), (e: unknown) => e instanceof NsnetError && e.code === 'ERR_NETNS_NOT_FOUND');
    });
  });
});
