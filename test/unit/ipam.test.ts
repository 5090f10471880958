/**
 * IPAM: network address plans (defaults, pools, overlaps, IPv6), leases (sequential order,
 * reuse, exhaustion, static addresses, ranges, idempotence), MACs from IPs, every error code;
 * against an in-memory transaction and, for commit behaviour, a real FileStore.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Ipam, macFromIp, normalizeNetwork, DEFAULT_POOLS, type NormalizedNetwork } from '../../lib/ipam/index';
import { FileStore, type DamagedDocument, type StoreEntry, type StoreScan, type StoreTx } from '../../lib/store/index';

/** A StoreTx in memory with the same copy semantics as FileStore; counts puts. */
class MemTx implements StoreTx {
  readonly data = new Map<string, string>();
  puts = 0;
  get<T>(c: string, k: string): T | undefined {
    const t = this.data.get(`${c}\0${k}`);
    return t === undefined ? undefined : JSON.parse(t);
  }
  list<T>(c: string): StoreEntry<T>[] {
    return this.keys(c).map((key) => ({ key, value: this.get<T>(c, key)! }));
  }
  /** (Nothing is ever damaged in memory.) */
  scan<T>(c: string): StoreScan<T> {
    return { entries: this.list<T>(c), damaged: [] };
  }
  damaged(): DamagedDocument[] {
    return [];
  }
  setAside(d: DamagedDocument): string {
    if (d.key !== undefined) this.delete(d.collection, d.key);
    return `${d.file}.damaged`;
  }
  keys(c: string): string[] {
    return [...this.data.keys()]
      .filter((k) => k.startsWith(`${c}\0`))
      .map((k) => k.slice(c.length + 1))
      .sort();
  }
  put(c: string, k: string, v: unknown): void {
    this.puts++;
    this.data.set(`${c}\0${k}`, JSON.stringify(v));
  }
  delete(c: string, k: string): void {
    this.data.delete(`${c}\0${k}`);
  }
}

const code = (c: string, details?: Record<string, unknown>) => (e: any) => {
  assert.equal(e?.code, c, `expected ${c}, got ${e?.code}: ${e?.message}`);
  if (details) for (const [k, v] of Object.entries(details)) assert.deepEqual(e.details[k], v, `details.${k}`);
  return true;
};

describe('IPAM: normalizeNetwork', () => {
  it('defaults: the first free /16 from 172.17.0.0, gateway = first host', () => {
    assert.deepEqual(normalizeNetwork({}), { subnet: '172.17.0.0/16', gateway: '172.17.0.1' });
    assert.deepEqual(normalizeNetwork({}, ['172.17.0.0/16', '172.19.0.0/16']), { subnet: '172.18.0.0/16', gateway: '172.18.0.1' });
    assert.deepEqual(normalizeNetwork({ subnet: '10.1.0.0/24' }), { subnet: '10.1.0.0/24', gateway: '10.1.0.1' });
  });

  it('after 172.17–172.31 come 192.168.0.0/16 split in /20s, then ERR_NO_FREE_SUBNET', () => {
    const taken = Array.from({ length: 15 }, (_, i) => `172.${17 + i}.0.0/16`);
    assert.equal(normalizeNetwork({}, taken).subnet, '192.168.0.0/20');
    // A big block taken (a host route, another network) is skipped in one go.
    assert.equal(normalizeNetwork({}, ['172.16.0.0/12']).subnet, '192.168.0.0/20');
    const all = [...taken];
    const seen: string[] = [];
    for (let i = 0; i < 16; i++) {
      const n = normalizeNetwork({}, all);
      seen.push(n.subnet);
      all.push(n.subnet);
    }
    assert.equal(seen[1], '192.168.16.0/20');
    assert.equal(seen[15], '192.168.240.0/20');
    assert.throws(() => normalizeNetwork({}, all), code('ERR_NO_FREE_SUBNET'));
    assert.equal(DEFAULT_POOLS.length, 5);
  });

  it('existing subnets with host bits (interface addresses) and IPv6 ones are understood', () => {
    assert.equal(normalizeNetwork({}, ['172.17.3.4/16', 'fd00::/64']).subnet, '172.18.0.0/16');
  });

  it('avoid steers the pick only; custom pools', () => {
    assert.equal(normalizeNetwork({}, [], { avoid: ['172.17.0.0/16'] }).subnet, '172.18.0.0/16');
    assert.equal(normalizeNetwork({ subnet: '172.17.0.0/16' }, [], { avoid: ['172.17.0.0/16'] }).subnet, '172.17.0.0/16');
    const pools = [{ base: '10.10.0.0/16', size: 24 }];
    assert.equal(normalizeNetwork({}, ['10.10.0.0/23'], { pools }).subnet, '10.10.2.0/24');
    assert.throws(() => normalizeNetwork({}, ['10.10.0.0/16'], { pools }), code('ERR_NO_FREE_SUBNET'));
    assert.throws(() => normalizeNetwork({}, [], { pools: [{ base: '10.0.0.0/8', size: 4 }] }), code('ERR_INVALID_ARGUMENT'));
    assert.throws(() => normalizeNetwork({}, [], { pools: [{ base: '10.0.0.1/8', size: 16 }] }), code('ERR_INVALID_CIDR'));
  });

  it('a subnet must be in network form: ERR_INVALID_CIDR with a hint', () => {
    assert.throws(() => normalizeNetwork({ subnet: '172.20.0.1/16' }), code('ERR_INVALID_CIDR', { hint: '172.20.0.0/16' }));
    assert.throws(() => normalizeNetwork({ subnet: '172.20.0.1/16' }), /did you mean 172\.20\.0\.0\/16/u);
    for (const bad of [
      'nonsense',
      '172.20.0.0',
      '172.20.0.0/33',
      '172.20.0/16',
      '10.0.0.0/31',
      '10.0.0.0/32',
      '10.0.0.0/7',
      '127.0.0.0/8',
      '224.0.0.0/24',
      '0.0.0.0/8',
      'fd00::/64',
      5,
    ]) {
      assert.throws(() => normalizeNetwork({ subnet: bad as any }), code('ERR_INVALID_CIDR'), String(bad));
    }
    assert.deepEqual(normalizeNetwork({ subnet: '10.0.0.0/30' }), { subnet: '10.0.0.0/30', gateway: '10.0.0.1' });
  });

  it('gateway: inside the subnet, not its network or broadcast address', () => {
    assert.equal(normalizeNetwork({ subnet: '172.20.0.0/16', gateway: '172.20.5.254' }).gateway, '172.20.5.254');
    for (const g of ['172.21.0.1', '172.20.0.0', '172.20.255.255']) {
      assert.throws(() => normalizeNetwork({ subnet: '172.20.0.0/16', gateway: g }), code('ERR_GATEWAY_OUTSIDE_SUBNET', { gateway: g }));
    }
    assert.throws(() => normalizeNetwork({ subnet: '172.20.0.0/16', gateway: '172.20.0.300' }), code('ERR_INVALID_IP'));
    assert.throws(() => normalizeNetwork({ subnet: '172.20.0.0/16', gateway: 'fd00::1' }), code('ERR_INVALID_IP'));
    assert.throws(() => normalizeNetwork({ gateway: '172.17.0.1' }), code('ERR_INVALID_ARGUMENT'));
  });

  it('ipRange: inside the subnet, network form', () => {
    assert.deepEqual(normalizeNetwork({ subnet: '172.20.0.0/16', ipRange: '172.20.5.0/24' }), {
      subnet: '172.20.0.0/16',
      gateway: '172.20.0.1',
      ipRange: '172.20.5.0/24',
    });
    assert.throws(() => normalizeNetwork({ subnet: '172.20.0.0/16', ipRange: '172.21.0.0/24' }), code('ERR_RANGE_OUTSIDE_SUBNET'));
    assert.throws(() => normalizeNetwork({ subnet: '172.20.0.0/16', ipRange: '172.20.0.0/15' }), code('ERR_RANGE_OUTSIDE_SUBNET'));
    assert.throws(() => normalizeNetwork({ subnet: '172.20.0.0/16', ipRange: '172.20.5.1/24' }), code('ERR_INVALID_CIDR', { hint: '172.20.5.0/24' }));
    assert.throws(() => normalizeNetwork({ ipRange: '172.17.5.0/24' }), code('ERR_INVALID_ARGUMENT'));
  });

  it('refuses a subnet overlapping another, naming it', () => {
    assert.throws(
      () => normalizeNetwork({ subnet: '172.20.0.0/16' }, ['10.0.0.0/8', '172.20.128.0/17']),
      code('ERR_SUBNET_OVERLAP', { other: '172.20.128.0/17' }),
    );
    assert.throws(() => normalizeNetwork({ subnet: '172.20.1.0/24' }, ['172.16.0.0/12']), code('ERR_SUBNET_OVERLAP', { other: '172.16.0.0/12' }));
    assert.throws(() => normalizeNetwork({ subnet: '172.20.1.0/24' }, ['172.20.1.0/24']), /overlaps 172\.20\.1\.0\/24/u);
    assert.equal(normalizeNetwork({ subnet: '172.21.0.0/16' }, ['172.20.0.0/16', '172.22.0.0/16']).subnet, '172.21.0.0/16');
    assert.throws(() => normalizeNetwork({ subnet: '172.21.0.0/16' }, ['garbage']), code('ERR_INVALID_CIDR'));
  });

  it('IPv6: subnet6 /48../124, gateway6 defaults to ::1 of it, checks and overlaps', () => {
    assert.deepEqual(normalizeNetwork({ subnet: '172.20.0.0/16', subnet6: 'FD00:0001:0:0::/64' }), {
      subnet: '172.20.0.0/16',
      gateway: '172.20.0.1',
      subnet6: 'fd00:1::/64',
      gateway6: 'fd00:1::1',
    });
    assert.equal(normalizeNetwork({ subnet6: '2001:db8:1::/64', gateway6: '2001:db8:1::fe' }).gateway6, '2001:db8:1::fe');
    for (const bad of ['fd00::/40', 'fd00::/125', 'fe80::/64', 'ff02::/64', '::/64', 'fd00::1/64', '10.0.0.0/24']) {
      assert.throws(() => normalizeNetwork({ subnet6: bad }), code('ERR_INVALID_CIDR'), bad);
    }
    assert.throws(() => normalizeNetwork({ subnet6: 'fd00:1::/64', gateway6: 'fd00:2::1' }), code('ERR_GATEWAY_OUTSIDE_SUBNET'));
    assert.throws(() => normalizeNetwork({ subnet6: 'fd00:1::/64', gateway6: 'fd00:1::' }), code('ERR_GATEWAY_OUTSIDE_SUBNET'));
    assert.throws(() => normalizeNetwork({ subnet6: 'fd00:1::/64', gateway6: 'fe80::1%eth0' }), code('ERR_INVALID_IP'));
    assert.throws(() => normalizeNetwork({ subnet6: 'fd00:1::/64' }, ['fd00::/16']), code('ERR_SUBNET_OVERLAP', { other: 'fd00::/16' }));
    assert.throws(() => normalizeNetwork({ gateway6: 'fd00::1' }), code('ERR_INVALID_ARGUMENT'));
  });

  it('unknown options are ERR_INVALID_ARGUMENT', () => {
    assert.throws(() => normalizeNetwork({ subnet: '10.0.0.0/24', gatway: '10.0.0.1' } as any), code('ERR_INVALID_ARGUMENT'));
    assert.throws(() => normalizeNetwork(null as any), code('ERR_INVALID_ARGUMENT'));
    assert.throws(() => normalizeNetwork({}, 'x' as any), code('ERR_INVALID_ARGUMENT'));
  });
});

describe('IPAM: leases', () => {
  const ipam = new Ipam();
  let tx: MemTx;
  const pool = (name: string, spec: Parameters<typeof normalizeNetwork>[0]): NormalizedNetwork => {
    const plan = normalizeNetwork(spec, ipam.subnets(tx));
    ipam.createPool(tx, name, plan);
    return plan;
  };
  beforeEach(() => {
    tx = new MemTx();
  });

  it('a /29 gives 5 hosts (network, gateway, broadcast excluded), then ERR_SUBNET_FULL', () => {
    pool('n', { subnet: '172.30.0.0/29' });
    const got = ['a', 'b', 'c', 'd', 'e'].map((owner) => ipam.allocate(tx, 'n', { owner }).ipv4);
    assert.deepEqual(got, ['172.30.0.2', '172.30.0.3', '172.30.0.4', '172.30.0.5', '172.30.0.6']);
    assert.throws(() => ipam.allocate(tx, 'n', { owner: 'f' }), code('ERR_SUBNET_FULL'));
    ipam.release(tx, 'n', 'c');
    assert.equal(ipam.allocate(tx, 'n', { owner: 'f' }).ipv4, '172.30.0.4', 'the one free address, found by wrapping');
    assert.throws(() => ipam.allocate(tx, 'n', { owner: 'g' }), code('ERR_SUBNET_FULL'));
  });

  it('allocation goes on from the last address: a freed one is not reused at once', () => {
    pool('n', { subnet: '10.5.0.0/24' });
    assert.equal(ipam.allocate(tx, 'n', { owner: 'c1' }).ipv4, '10.5.0.2');
    assert.equal(ipam.allocate(tx, 'n', { owner: 'c2' }).ipv4, '10.5.0.3');
    assert.equal(ipam.release(tx, 'n', 'c1'), true);
    assert.equal(ipam.allocate(tx, 'n', { owner: 'c3' }).ipv4, '10.5.0.4');
    assert.equal(ipam.allocate(tx, 'n', { owner: 'c1' }).ipv4, '10.5.0.5');
  });

  it('the same owner gets its lease again, without a write', () => {
    pool('n', { subnet: '10.5.0.0/24', subnet6: 'fd00:5::/64' });
    const first = ipam.allocate(tx, 'n', { owner: 'c1' });
    assert.deepEqual(first, { ipv4: '10.5.0.2', ipv6: 'fd00:5::2' });
    const puts = tx.puts;
    assert.deepEqual(ipam.allocate(tx, 'n', { owner: 'c1' }), first);
    assert.deepEqual(ipam.allocate(tx, 'n', { owner: 'c1', ipv4: '10.5.0.2' }), first);
    assert.equal(tx.puts, puts);
    assert.deepEqual(ipam.leaseOf(tx, 'n', 'c1'), first);
    assert.equal(ipam.leaseOf(tx, 'n', 'nobody'), undefined);
  });

  it('static addresses: inside the subnet, free, not reserved; dynamic ones go around them', () => {
    pool('n', { subnet: '10.6.0.0/24', ipRange: '10.6.0.128/25' });
    assert.deepEqual(ipam.allocate(tx, 'n', { owner: 's1', ipv4: '10.6.0.10' }), { ipv4: '10.6.0.10' }, 'outside ipRange is allowed');
    assert.deepEqual(ipam.allocate(tx, 'n', { owner: 's2', ipv4: '10.6.0.129' }), { ipv4: '10.6.0.129' });
    assert.equal(ipam.allocate(tx, 'n', { owner: 'd1' }).ipv4, '10.6.0.128');
    assert.equal(ipam.allocate(tx, 'n', { owner: 'd2' }).ipv4, '10.6.0.130', 'skips the static lease');
    assert.throws(() => ipam.allocate(tx, 'n', { owner: 'x', ipv4: '10.6.1.5' }), code('ERR_ADDRESS_OUTSIDE_SUBNET'));
    assert.throws(() => ipam.allocate(tx, 'n', { owner: 'x', ipv4: '10.6.0.10' }), code('ERR_ADDRESS_IN_USE', { owner: 's1' }));
    assert.throws(() => ipam.allocate(tx, 'n', { owner: 'x', ipv4: '10.6.0.10' }), /leased to s1/u);
    assert.throws(() => ipam.allocate(tx, 'n', { owner: 'x', ipv4: '10.6.0.1' }), code('ERR_ADDRESS_IN_USE', { owner: 'gateway' }));
    assert.throws(() => ipam.allocate(tx, 'n', { owner: 'x', ipv4: '10.6.0.0' }), code('ERR_ADDRESS_RESERVED'));
    assert.throws(() => ipam.allocate(tx, 'n', { owner: 'x', ipv4: '10.6.0.255' }), code('ERR_ADDRESS_RESERVED'));
    assert.throws(() => ipam.allocate(tx, 'n', { owner: 's1', ipv4: '10.6.0.11' }), code('ERR_LEASE_MISMATCH', { held: '10.6.0.10' }));
    for (const bad of ['10.6.0.300', '10.6.0', 'fd00::1', 7]) {
      assert.throws(() => ipam.allocate(tx, 'n', { owner: 'x', ipv4: bad as any }), code('ERR_INVALID_IP'), String(bad));
    }
  });

  it('ipRange: dynamic addresses only from it (its first address is a host of a bigger subnet)', () => {
    pool('n', { subnet: '172.20.0.0/16', ipRange: '172.20.5.0/30' });
    const got = ['a', 'b', 'c', 'd'].map((owner) => ipam.allocate(tx, 'n', { owner }).ipv4);
    assert.deepEqual(got, ['172.20.5.0', '172.20.5.1', '172.20.5.2', '172.20.5.3']);
    assert.throws(() => ipam.allocate(tx, 'n', { owner: 'e' }), code('ERR_SUBNET_FULL'));
    pool('m', { subnet: '10.9.0.0/24', ipRange: '10.9.0.0/30' });
    assert.deepEqual(
      ['a', 'b'].map((owner) => ipam.allocate(tx, 'm', { owner }).ipv4),
      ['10.9.0.2', '10.9.0.3'],
      'network and gateway skipped',
    );
    assert.throws(() => ipam.allocate(tx, 'm', { owner: 'c' }), code('ERR_SUBNET_FULL'));
  });

  it('IPv6: automatic on a dual-stack network, static, or refused; released with the IPv4 one', () => {
    pool('ds', { subnet: '10.7.0.0/24', subnet6: 'fd00:7::/64' });
    pool('v4', { subnet: '10.8.0.0/24' });
    assert.deepEqual(ipam.allocate(tx, 'ds', { owner: 'a' }), { ipv4: '10.7.0.2', ipv6: 'fd00:7::2' });
    assert.deepEqual(ipam.allocate(tx, 'ds', { owner: 'b', ipv6: 'fd00:7::abcd' }), { ipv4: '10.7.0.3', ipv6: 'fd00:7::abcd' });
    assert.deepEqual(ipam.allocate(tx, 'ds', { owner: 'c', ipv6: false }), { ipv4: '10.7.0.4' });
    assert.deepEqual(ipam.allocate(tx, 'ds', { owner: 'c', ipv6: true }), { ipv4: '10.7.0.4', ipv6: 'fd00:7::3' }, 'adds the missing family');
    assert.deepEqual(ipam.allocate(tx, 'v4', { owner: 'a' }), { ipv4: '10.8.0.2' });
    assert.throws(() => ipam.allocate(tx, 'v4', { owner: 'z', ipv6: true }), code('ERR_NO_IPV6_SUBNET'));
    assert.throws(() => ipam.allocate(tx, 'ds', { owner: 'z', ipv6: 'fd00:8::1' }), code('ERR_ADDRESS_OUTSIDE_SUBNET'));
    assert.throws(() => ipam.allocate(tx, 'ds', { owner: 'z', ipv6: 'fd00:7::1' }), code('ERR_ADDRESS_IN_USE', { owner: 'gateway' }));
    assert.throws(() => ipam.allocate(tx, 'ds', { owner: 'z', ipv6: 'fd00:7::' }), code('ERR_ADDRESS_RESERVED'));
    const puts = tx.puts;
    assert.throws(() => ipam.allocate(tx, 'ds', { owner: 'z', ipv6: 'fd00:7::abcd' }), code('ERR_ADDRESS_IN_USE', { owner: 'b' }));
    assert.equal(tx.puts, puts, 'a refused allocation writes nothing (not even the IPv4 half)');
    assert.throws(() => ipam.allocate(tx, 'ds', { owner: 'z', ipv6: 3 as any }), code('ERR_INVALID_ARGUMENT'));
    assert.deepEqual(ipam.leases(tx, 'ds'), [
      { address: '10.7.0.2', family: 4, owner: 'a' },
      { address: '10.7.0.3', family: 4, owner: 'b' },
      { address: '10.7.0.4', family: 4, owner: 'c' },
      { address: 'fd00:7::2', family: 6, owner: 'a' },
      { address: 'fd00:7::3', family: 6, owner: 'c' },
      { address: 'fd00:7::abcd', family: 6, owner: 'b' },
    ]);
    assert.equal(ipam.release(tx, 'ds', 'a'), true);
    assert.equal(ipam.release(tx, 'ds', 'a'), false);
    assert.deepEqual(
      ipam.leases(tx, 'ds').map((l) => l.owner),
      ['b', 'c', 'c', 'b'],
    );
  });

  it('pools: created idempotently, overlap and conflicts refused, deleted only when empty', () => {
    const plan = pool('n', { subnet: '10.1.0.0/16' });
    assert.deepEqual(ipam.createPool(tx, 'n', plan), ipam.pool(tx, 'n'));
    assert.throws(() => ipam.createPool(tx, 'n', normalizeNetwork({ subnet: '10.2.0.0/16' })), code('ERR_NETWORK_EXISTS'));
    assert.throws(() => ipam.createPool(tx, 'other', normalizeNetwork({ subnet: '10.1.2.0/24' })), code('ERR_SUBNET_OVERLAP', { other: '10.1.0.0/16' }));
    assert.throws(() => ipam.createPool(tx, 'other', { subnet: '10.3.0.0/16' } as any), code('ERR_INVALID_ARGUMENT'));
    assert.throws(() => ipam.createPool(tx, 'other', { subnet: '10.3.0.1/16', gateway: '10.3.0.1' }), code('ERR_INVALID_CIDR'));
    assert.throws(() => ipam.createPool(tx, '', plan), code('ERR_INVALID_ARGUMENT'));
    assert.deepEqual(ipam.subnets(tx), ['10.1.0.0/16']);
    assert.deepEqual(ipam.subnets(tx, 'n'), [], 're-creating n must not overlap itself');
    assert.deepEqual(ipam.createPool(tx, 'n', normalizeNetwork({ subnet: '10.1.0.0/16' }, ipam.subnets(tx, 'n'))).subnet, '10.1.0.0/16');
    ipam.allocate(tx, 'n', { owner: 'c1' });
    assert.throws(() => ipam.deletePool(tx, 'n'), code('ERR_NETWORK_IN_USE', { owners: ['c1'] }));
    ipam.release(tx, 'n', 'c1');
    assert.equal(ipam.deletePool(tx, 'n'), true);
    assert.equal(ipam.deletePool(tx, 'n'), false);
    assert.equal(ipam.pool(tx, 'n'), undefined);
    assert.deepEqual(tx.keys('ipam'), []);
  });

  it('unknown networks and bad arguments', () => {
    assert.throws(() => ipam.allocate(tx, 'nope', { owner: 'a' }), code('ERR_NETWORK_NOT_FOUND'));
    assert.throws(() => ipam.leases(tx, 'nope'), code('ERR_NETWORK_NOT_FOUND'));
    assert.throws(() => ipam.leaseOf(tx, 'nope', 'a'), code('ERR_NETWORK_NOT_FOUND'));
    assert.equal(ipam.release(tx, 'nope', 'a'), false);
    pool('n', { subnet: '10.1.0.0/24' });
    for (const owner of ['', 5, undefined, 'x'.repeat(300)]) {
      assert.throws(() => ipam.allocate(tx, 'n', { owner } as any), code('ERR_INVALID_ARGUMENT'), String(owner));
    }
    assert.throws(() => ipam.allocate(tx, 'n', { owner: 'a', ip: '10.1.0.5' } as any), code('ERR_INVALID_ARGUMENT'));
    tx.put('ipam', 'broken', { subnet: 1 });
    assert.throws(() => ipam.allocate(tx, 'broken', { owner: 'a' }), code('ERR_STORE_CORRUPT'));
  });

  it('recount: the counters are counted again from the leases (in range, per family); no pool, false', () => {
    pool('r', { subnet: '10.3.0.0/24', ipRange: '10.3.0.128/25', subnet6: 'fd00:3::/64' });
    for (const owner of ['a', 'b', 'c']) ipam.allocate(tx, 'r', { owner });
    ipam.allocate(tx, 'r', { owner: 'static', ipv4: '10.3.0.5' }); // outside ipRange: not counted
    const right = ipam.pool(tx, 'r')!;
    tx.put('ipam', 'r', { ...right, used: 99, used6: 0 });
    tx.delete('ipam-addr', 'r/10.3.0.129'); // a lease lost
    assert.equal(ipam.recount(tx, 'r'), true);
    assert.deepEqual([ipam.pool(tx, 'r')!.used, ipam.pool(tx, 'r')!.used6], [right.used - 1, right.used6]);
    assert.equal(ipam.recount(tx, 'nope'), false);
  });

  it('1,000 allocations in a /16 are unique, in order, and cheap', () => {
    pool('big', { subnet: '172.25.0.0/16' });
    const seen = new Set<string>();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 1000; i++) seen.add(ipam.allocate(tx, 'big', { owner: `c${i}` }).ipv4);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.equal(seen.size, 1000);
    assert.ok(seen.has('172.25.0.2') && seen.has('172.25.3.233') && !seen.has('172.25.0.1') && !seen.has('172.25.0.0'));
    assert.equal(ipam.leases(tx, 'big').length, 1000);
    if (process.env.NSNET_TEST_TIMINGS) process.stdout.write(`      1,000 allocations (in-memory tx): ${ms.toFixed(1)} ms\n`);
  });

  it('a /20 fills up completely (4,094 hosts), wraps after releases, and reports full', () => {
    pool('f', { subnet: '10.20.0.0/20' });
    const seen = new Set<string>();
    for (let i = 0; i < 4093; i++) seen.add(ipam.allocate(tx, 'f', { owner: `c${i}` }).ipv4);
    assert.equal(seen.size, 4093);
    assert.throws(() => ipam.allocate(tx, 'f', { owner: 'more' }), code('ERR_SUBNET_FULL'));
    for (const i of [10, 2000, 4000]) ipam.release(tx, 'f', `c${i}`);
    const again = ['x', 'y', 'z'].map((owner) => ipam.allocate(tx, 'f', { owner }).ipv4);
    assert.deepEqual(again, ['10.20.0.12', '10.20.7.210', '10.20.15.162']);
    assert.throws(() => ipam.allocate(tx, 'f', { owner: 'more' }), code('ERR_SUBNET_FULL'));
  });
});

describe('IPAM in a FileStore transaction', () => {
  let tmp: string;
  let store: FileStore;
  const ipam = new Ipam();
  beforeEach(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-ipam-'));
    store = await FileStore.open({ dir: tmp });
    await store.update((tx) => ipam.createPool(tx, 'app', normalizeNetwork({ subnet: '172.20.0.0/16' }, ipam.subnets(tx))));
  });
  afterEach(async () => {
    await store.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('a lease commits with the transaction, or not at all', async () => {
    await store.update((tx) => {
      const lease = ipam.allocate(tx, 'app', { owner: 'c1' });
      tx.put('endpoints', 'c1', { lease });
    });
    await assert.rejects(
      store.update((tx) => {
        ipam.allocate(tx, 'app', { owner: 'c2' });
        throw new Error('the veth could not be made');
      }),
      /veth/u,
    );
    const leases = await store.read((v) => ipam.leases(v, 'app'));
    assert.deepEqual(leases, [{ address: '172.20.0.2', family: 4, owner: 'c1' }]);
    assert.equal((await store.update((tx) => ipam.allocate(tx, 'app', { owner: 'c2' }))).ipv4, '172.20.0.3');
    await store.read((v) => {
      assert.deepEqual(v.get('ipam', 'app'), { subnet: '172.20.0.0/16', gateway: '172.20.0.1', next: '172.20.0.4', used: 2 });
      assert.deepEqual(v.list('ipam-addr'), [
        { key: 'app/172.20.0.2', value: 'c1' },
        { key: 'app/172.20.0.3', value: 'c2' },
      ]);
      assert.deepEqual(v.list('ipam-owner'), [
        { key: 'app/c1', value: { ipv4: '172.20.0.2' } },
        { key: 'app/c2', value: { ipv4: '172.20.0.3' } },
      ]);
    });
  });

  it('1,000 connects, one transaction each, give unique addresses', async function () {
    this.timeout(120000);
    const t0 = process.hrtime.bigint();
    const all = await Promise.all(Array.from({ length: 1000 }, (_, i) => store.update((tx) => ipam.allocate(tx, 'app', { owner: `c${i}` }).ipv4)));
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.equal(new Set(all).size, 1000);
    if (process.env.NSNET_TEST_TIMINGS) process.stdout.write(`      1,000 allocations, 1 update each: ${ms.toFixed(0)} ms\n`);
  });
});

describe('macFromIp', () => {
  it('02:42 + the address bytes, like Docker', () => {
    assert.equal(macFromIp('172.20.0.2'), '02:42:ac:14:00:02');
    assert.equal(macFromIp('10.0.0.255'), '02:42:0a:00:00:ff');
    for (const bad of ['fd00::1', '10.0.0', '', 'x']) assert.throws(() => macFromIp(bad), code('ERR_INVALID_IP'), bad);
  });
});
