/**
 * Neighbour (ARP/NDP) entries and the forwarding database against the kernel: every call of
 * `nl.neighbors` and `nl.fdb` is checked with an independent oracle (`ip -j neigh show`,
 * `bridge -j fdb show`) and, where it proves something, with real TCP traffic between
 * namespaces the test made. Each test builds its own namespaces (unique names, torn down
 * afterwards by the sandbox helpers, even on failure).
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Netlink } from '../../lib/index';
import type { FdbEntry, FdbSpec, Neighbor, NeighborSpec } from '../../lib/index';
import { tcpReach } from '../helpers/traffic';
import { rejectsWith } from '../helpers/assert';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';
import { bridgeJson, ipJson, sh } from '../helpers/oracle';

/** `ip -n NS ...`: world building, independent of the code under test. */
function ip(ns: string, ...args: string[]): void {
  sh('ip', ['-n', ns, ...args]);
}

function linkIndexes(ns: string): Record<string, number> {
  const links = ipJson(['link', 'show'], ns) as { ifname: string; ifindex: number }[];
  return Object.fromEntries(links.map((l) => [l.ifname, l.ifindex]));
}

const BAD_MACS: unknown[] = [
  '02:00:00:00:00',
  'zz:00:00:00:00:00',
  '02-00-00-00-00-01',
  '',
  '02:00:00:00:00:001',
  '0200.0000.0001',
  '02:00:00:00:00:0g',
  ' 02:00:00:00:00:01',
  42,
  null,
];

// ---------------------------------------------------------------- neighbours

/** The facts both sides can tell about a neighbour entry. */
interface NFact {
  index: number;
  family: 4 | 6;
  ip: string;
  mac?: string;
  state: string[];
  router: boolean;
}

const sortN = (a: NFact[]): NFact[] => [...a].sort((x, y) => `${x.index} ${x.ip}`.localeCompare(`${y.index} ${y.ip}`));

/**
 * What `ip -j neigh show [dev D]` shows (args after 'show'). By default `ip` hides NOARP
 * entries (the kernel's multicast ones): so do we, on the API side, see `visible`.
 */
function neighOracle(ns: string, family?: 4 | 6, dev?: string): NFact[] {
  const idx = linkIndexes(ns);
  const args = [...(family ? [`-${family}`] : []), 'neigh', 'show', ...(dev ? ['dev', dev] : [])];
  const rows = ipJson(args, ns) as Record<string, unknown>[];
  return sortN(
    rows.map((r) => {
      const devName = typeof r.dev === 'string' ? r.dev : dev!;
      const f: NFact = {
        index: idx[devName]!,
        family: String(r.dst).includes(':') ? 6 : 4,
        ip: String(r.dst),
        state: (r.state as string[]).map((s) => s.toLowerCase()).sort(),
        router: 'router' in r,
      };
      if (typeof r.lladdr === 'string') f.mac = r.lladdr;
      return f;
    }),
  );
}

function neighFacts(list: Neighbor[]): NFact[] {
  return sortN(
    list.filter(visible).map((n) => {
      const f: NFact = { index: n.index, family: n.family, ip: n.ip, state: [...n.state].sort(), router: n.router };
      if (n.mac !== undefined) f.mac = n.mac;
      return f;
    }),
  );
}

/** What `ip neigh show` shows without `nud all`: everything but NOARP-only entries. */
function visible(n: Neighbor): boolean {
  return !(n.state.length === 1 && n.state[0] === 'noarp');
}

// ---------------------------------------------------------------- FDB

/** The facts both sides can tell about an FDB entry. */
interface FFact {
  index: number;
  mac: string;
  dst?: string;
  vni?: number;
  port?: number;
  vlan?: number;
  master?: number;
  self: boolean;
  state: string;
}

const fkey = (f: FFact): string => JSON.stringify([f.index, f.mac, f.dst ?? '', f.vlan ?? 0, f.master ?? 0, f.self]);
const sortF = (a: FFact[]): FFact[] => [...a].sort((x, y) => fkey(x).localeCompare(fkey(y)));

/** What `bridge -j fdb show [dev D]` shows. */
function fdbOracle(ns: string, dev?: string): FFact[] {
  const idx = linkIndexes(ns);
  const rows = bridgeJson(['fdb', 'show', ...(dev ? ['dev', dev] : [])], ns) as Record<string, unknown>[];
  return sortF(
    rows.map((r) => {
      const devName = typeof r.ifname === 'string' ? r.ifname : dev!;
      const f: FFact = {
        index: idx[devName]!,
        mac: String(r.mac),
        self: Array.isArray(r.flags) && r.flags.includes('self'),
        state: typeof r.state === 'string' ? r.state : '',
      };
      if (typeof r.dst === 'string') f.dst = r.dst;
      if (typeof r.vni === 'number') f.vni = r.vni;
      if (typeof r.port === 'number') f.port = r.port;
      if (typeof r.vlan === 'number') f.vlan = r.vlan;
      if (typeof r.master === 'string') f.master = idx[r.master];
      return f;
    }),
  );
}

/**
 * The API's entries in the oracle's shape. `bridge` names the NUD state as iproute2's
 * state_n2a does: PERMANENT "permanent", else NOARP "static", else STALE "stale", else ""
 * (REACHABLE: dynamic). `permanent` means "never ages out": PERMANENT or NOARP.
 */
function fdbFacts(list: FdbEntry[]): FFact[] {
  return sortF(
    list.map((e) => {
      const has = (s: string): boolean => e.state.includes(s);
      const state = has('permanent') ? 'permanent' : has('noarp') ? 'static' : has('stale') ? 'stale' : '';
      assert.equal(e.permanent, state === 'permanent' || state === 'static', `${e.mac}: permanent vs state ${e.state.join(',')}`);
      const f: FFact = { index: e.index, mac: e.mac, self: e.self, state };
      if (e.dst !== undefined) f.dst = e.dst;
      if (e.vni !== undefined) f.vni = e.vni;
      if (e.port !== undefined) f.port = e.port;
      if (e.vlan !== undefined) f.vlan = e.vlan;
      if (e.master !== undefined) f.master = e.master;
      return f;
    }),
  );
}

describe('kernel: neighbours', function () {
  useSandbox();
  this.timeout(30000);

  /** A handle on `ns`, closed at teardown (before its namespace is deleted: LIFO). */
  async function open(ns: string): Promise<Netlink> {
    const nl = await Netlink.open({ netns: ns });
    registerCleanup(() => nl.close(), `close netlink handle on ${ns}`);
    return nl;
  }

  /** A namespace with a veth pair d0/d1, up, no IPv6 link-local; 10.1.2.3/24 and fd00::1/64 on d0. */
  async function world(): Promise<{ ns: string; nl: Netlink; d0: number; d1: number }> {
    const ns = await makeNetns('neigh');
    ip(ns, 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1');
    for (const d of ['d0', 'd1']) {
      ip(ns, 'link', 'set', 'dev', d, 'addrgenmode', 'none');
      ip(ns, 'link', 'set', 'dev', d, 'up');
    }
    ip(ns, 'addr', 'add', '10.1.2.3/24', 'dev', 'd0');
    ip(ns, 'addr', 'add', 'fd00::1/64', 'dev', 'd0', 'nodad');
    const idx = linkIndexes(ns);
    return { ns, nl: await open(ns), d0: idx.d0!, d1: idx.d1! };
  }

  it('adds permanent IPv4 and IPv6 entries', async () => {
    const { ns, nl, d0 } = await world();
    assert.deepEqual(neighOracle(ns), []);
    await nl.neighbors.add({ dev: 'd0', ip: '10.1.2.50', mac: '02:00:00:00:00:50' });
    await nl.neighbors.add({ dev: 'd0', ip: 'fd00::50', mac: '02:00:00:00:00:51' });
    assert.deepEqual(neighOracle(ns), [
      { index: d0, family: 4, ip: '10.1.2.50', mac: '02:00:00:00:00:50', state: ['permanent'], router: false },
      { index: d0, family: 6, ip: 'fd00::50', mac: '02:00:00:00:00:51', state: ['permanent'], router: false },
    ]);
  });

  it('the router flag and a non-permanent state; the MAC is normalised to lower case', async () => {
    const { ns, nl, d0 } = await world();
    await nl.neighbors.add({ dev: 'd0', ip: 'fd00::51', mac: '02:00:00:00:00:5A', router: true });
    await nl.neighbors.add({ dev: 'd0', ip: '10.1.2.52', mac: '02:00:00:00:00:54', state: 'stale' });
    assert.deepEqual(neighOracle(ns), [
      { index: d0, family: 4, ip: '10.1.2.52', mac: '02:00:00:00:00:54', state: ['stale'], router: false },
      { index: d0, family: 6, ip: 'fd00::51', mac: '02:00:00:00:00:5a', state: ['permanent'], router: true },
    ]);
  });

  it('a permanent entry is what the kernel uses: traffic goes to that MAC without ARP', async () => {
    // A and B joined by a veth; A does no ARP (NOARP on a0): only a neighbour entry added
    // through the API tells it B's MAC. B knows A's MAC from a static entry made with `ip`.
    const A = await makeNetns('neighA');
    const B = await makeNetns('neighB');
    ip(A, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'b0', 'netns', B);
    ip(A, 'link', 'set', 'dev', 'a0', 'address', '02:00:00:00:0a:00');
    ip(B, 'link', 'set', 'dev', 'b0', 'address', '02:00:00:00:0b:00');
    ip(A, 'addr', 'add', '10.77.0.1/24', 'dev', 'a0');
    ip(B, 'addr', 'add', '10.77.0.2/24', 'dev', 'b0');
    ip(A, 'link', 'set', 'dev', 'a0', 'arp', 'off', 'up');
    ip(B, 'link', 'set', 'dev', 'b0', 'up');
    ip(B, 'neigh', 'add', '10.77.0.1', 'lladdr', '02:00:00:00:0a:00', 'dev', 'b0', 'nud', 'permanent');
    const nlA = await open(A);
    // A wrong MAC: B's link drops frames that are not for it.
    await nlA.neighbors.add({ dev: 'a0', ip: '10.77.0.2', mac: '02:00:00:00:0b:99' });
    assert.equal(await tcpReach(B, A, '10.77.0.2'), false, 'traffic to a wrong MAC must not arrive');
    await nlA.neighbors.replace({ dev: 'a0', ip: '10.77.0.2', mac: '02:00:00:00:0b:00' });
    assert.equal(await tcpReach(B, A, '10.77.0.2'), true, 'traffic to the MAC set by replace did not arrive');
  });

  it('list() equals `ip -j neigh show`: all, by dev, by family', async () => {
    const { ns, nl } = await world();
    ip(ns, 'addr', 'add', '10.3.0.3/24', 'dev', 'd1');
    await nl.neighbors.add({ dev: 'd0', ip: '10.1.2.50', mac: '02:00:00:00:00:50' });
    await nl.neighbors.add({ dev: 'd0', ip: '10.1.2.51', mac: '02:00:00:00:00:51', router: true });
    await nl.neighbors.add({ dev: 'd0', ip: 'fd00::50', mac: '02:00:00:00:00:52' });
    await nl.neighbors.add({ dev: 'd0', ip: 'fd00::51', mac: '02:00:00:00:00:53', router: true });
    await nl.neighbors.add({ dev: 'd1', ip: '10.3.0.50', mac: '02:00:00:00:00:54' });
    await nl.neighbors.add({ dev: 'd1', ip: 'fd03::50', mac: '02:00:00:00:00:55', state: 'stale' });
    const all = neighOracle(ns);
    assert.equal(all.length, 6);
    assert.deepEqual(neighFacts(await nl.neighbors.list()), all);
    for (const dev of ['d0', 'd1']) {
      assert.deepEqual(neighFacts(await nl.neighbors.list({ dev })), neighOracle(ns, undefined, dev), dev);
      assert.equal(
        (await nl.neighbors.list({ dev })).every((n) => n.index === linkIndexes(ns)[dev]),
        true,
      );
    }
    for (const family of [4, 6] as const) {
      assert.deepEqual(neighFacts(await nl.neighbors.list({ family })), neighOracle(ns, family), `IPv${family}`);
    }
    assert.deepEqual(neighFacts(await nl.neighbors.list({ dev: 'd1', family: 6 })), neighOracle(ns, 6, 'd1'));
    assert.deepEqual(await nl.neighbors.list({ dev: 'lo' }), []);
  });

  it('replace changes the MAC of an entry (the count stays the same) and creates a missing one', async () => {
    const { ns, nl } = await world();
    await nl.neighbors.add({ dev: 'd0', ip: '10.1.2.50', mac: '02:00:00:00:00:50' });
    await nl.neighbors.add({ dev: 'd0', ip: 'fd00::50', mac: '02:00:00:00:00:51' });
    await nl.neighbors.replace({ dev: 'd0', ip: '10.1.2.50', mac: '02:00:00:00:00:99' });
    await nl.neighbors.replace({ dev: 'd0', ip: 'fd00::50', mac: '02:00:00:00:00:98' });
    assert.deepEqual(
      neighOracle(ns).map((n) => [n.ip, n.mac, n.state]),
      [
        ['10.1.2.50', '02:00:00:00:00:99', ['permanent']],
        ['fd00::50', '02:00:00:00:00:98', ['permanent']],
      ],
    );
    await nl.neighbors.replace({ dev: 'd0', ip: '10.1.2.60', mac: '02:00:00:00:00:60' });
    assert.deepEqual(
      neighOracle(ns).map((n) => n.ip),
      ['10.1.2.50', '10.1.2.60', 'fd00::50'],
    );
  });

  it('remove deletes exactly the entry named', async () => {
    const { ns, nl } = await world();
    await nl.neighbors.add({ dev: 'd0', ip: '10.1.2.50', mac: '02:00:00:00:00:50' });
    await nl.neighbors.add({ dev: 'd0', ip: '10.1.2.51', mac: '02:00:00:00:00:51' });
    await nl.neighbors.add({ dev: 'd0', ip: 'fd00::50', mac: '02:00:00:00:00:52' });
    await nl.neighbors.remove({ dev: 'd0', ip: '10.1.2.50' });
    await nl.neighbors.remove({ dev: 'd0', ip: 'fd00::50' });
    assert.deepEqual(
      neighOracle(ns).map((n) => n.ip),
      ['10.1.2.51'],
    );
    assert.deepEqual(
      (await nl.neighbors.list({ dev: 'd0' })).filter(visible).map((n) => n.ip),
      ['10.1.2.51'],
    );
  });

  it('errors: EEXIST on a duplicate add (the entry keeps its MAC), ENOENT on removing a missing one', async () => {
    const { ns, nl } = await world();
    await nl.neighbors.add({ dev: 'd0', ip: '10.1.2.50', mac: '02:00:00:00:00:50' });
    await nl.neighbors.add({ dev: 'd0', ip: 'fd00::50', mac: '02:00:00:00:00:51' });
    const before = neighOracle(ns);
    await rejectsWith(nl.neighbors.add({ dev: 'd0', ip: '10.1.2.50', mac: '02:00:00:00:00:50' }), 'EEXIST', 'RTM_NEWNEIGH');
    await rejectsWith(nl.neighbors.add({ dev: 'd0', ip: '10.1.2.50', mac: '02:00:00:00:00:77' }), 'EEXIST', 'RTM_NEWNEIGH');
    await rejectsWith(nl.neighbors.add({ dev: 'd0', ip: 'fd00::50', mac: '02:00:00:00:00:77' }), 'EEXIST', 'RTM_NEWNEIGH');
    await rejectsWith(nl.neighbors.remove({ dev: 'd0', ip: '10.1.2.77' }), 'ENOENT', 'RTM_DELNEIGH');
    await rejectsWith(nl.neighbors.remove({ dev: 'd0', ip: 'fd00::77' }), 'ENOENT', 'RTM_DELNEIGH');
    // The entry is on d0, not d1.
    await rejectsWith(nl.neighbors.remove({ dev: 'd1', ip: '10.1.2.50' }), 'ENOENT', 'RTM_DELNEIGH');
    assert.deepEqual(neighOracle(ns), before);
  });

  it('bad input: ERR_INVALID_MAC, ERR_INVALID_IP, ERR_INVALID_ARGUMENT, ENODEV; nothing changes', async () => {
    const { ns, nl } = await world();
    await nl.neighbors.add({ dev: 'd0', ip: '10.1.2.50', mac: '02:00:00:00:00:50' });
    const before = neighOracle(ns);
    for (const mac of BAD_MACS) {
      await rejectsWith(nl.neighbors.add({ dev: 'd0', ip: '10.1.2.60', mac: mac as string }), 'ERR_INVALID_MAC');
      await rejectsWith(nl.neighbors.replace({ dev: 'd0', ip: '10.1.2.50', mac: mac as string }), 'ERR_INVALID_MAC');
    }
    for (const bad of ['10.1.2', '10.1.2.300', 'fd00:::1', 'host', '10.1.2.0/24']) {
      await rejectsWith(nl.neighbors.add({ dev: 'd0', ip: bad, mac: '02:00:00:00:00:60' }), 'ERR_INVALID_IP');
      await rejectsWith(nl.neighbors.remove({ dev: 'd0', ip: bad }), 'ERR_INVALID_IP');
    }
    await rejectsWith(nl.neighbors.add({ dev: 'd0', ip: '10.1.2.60', mac: '02:00:00:00:00:60', state: 'sleepy' as 'stale' }), 'ERR_INVALID_ARGUMENT');
    await rejectsWith(
      nl.neighbors.add({ dev: 'd0', ip: '10.1.2.60', mac: '02:00:00:00:00:60', lladdr: 'x' } as unknown as NeighborSpec),
      'ERR_INVALID_ARGUMENT',
    );
    await rejectsWith(nl.neighbors.add({ dev: 'nope0', ip: '10.1.2.60', mac: '02:00:00:00:00:60' }), 'ENODEV', 'RTM_GETLINK');
    await rejectsWith(nl.neighbors.add({ dev: 9999, ip: '10.1.2.60', mac: '02:00:00:00:00:60' }), 'ENODEV', 'RTM_NEWNEIGH');
    assert.deepEqual(neighOracle(ns), before);
  });

  it('a handle on A never touches B', async () => {
    const a = await world();
    const b = await world();
    const beforeB = neighOracle(b.ns);
    await a.nl.neighbors.add({ dev: 'd0', ip: '10.1.2.50', mac: '02:00:00:00:00:50' });
    assert.equal(neighOracle(a.ns).length, 1);
    assert.deepEqual(neighOracle(b.ns), beforeB);
    await rejectsWith(b.nl.neighbors.remove({ dev: 'd0', ip: '10.1.2.50' }), 'ENOENT', 'RTM_DELNEIGH');
  });
});

describe('kernel: fdb', function () {
  useSandbox();
  this.timeout(30000);

  /** A handle on `ns`, closed at teardown (before its namespace is deleted: LIFO). */
  async function open(ns: string): Promise<Netlink> {
    const nl = await Netlink.open({ netns: ns });
    registerCleanup(() => nl.close(), `close netlink handle on ${ns}`);
    return nl;
  }

  /**
   * A namespace with an underlay veth u0/u1 (10.1.2.3/24 on u0), a vxlan vx0 (VNI 42, learning
   * off) over it, and a bridge br0 with port p0 (a veth whose peer p1 is up, so the port
   * forwards). Set up with `ip`, not the API.
   */
  async function world(): Promise<{ ns: string; nl: Netlink; idx: Record<string, number> }> {
    const ns = await makeNetns('fdb');
    ip(ns, 'link', 'add', 'u0', 'type', 'veth', 'peer', 'name', 'u1');
    ip(ns, 'addr', 'add', '10.1.2.3/24', 'dev', 'u0');
    ip(ns, 'link', 'set', 'dev', 'u0', 'up');
    ip(ns, 'link', 'set', 'dev', 'u1', 'up');
    ip(ns, 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '42', 'dstport', '4789', 'local', '10.1.2.3', 'dev', 'u0', 'nolearning');
    ip(ns, 'link', 'set', 'dev', 'vx0', 'up');
    ip(ns, 'link', 'add', 'br0', 'type', 'bridge');
    ip(ns, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1');
    ip(ns, 'link', 'set', 'dev', 'p0', 'master', 'br0');
    for (const d of ['br0', 'p0', 'p1']) ip(ns, 'link', 'set', 'dev', d, 'up');
    return { ns, nl: await open(ns), idx: linkIndexes(ns) };
  }

  /** The vxlan entries for one MAC, as `bridge fdb show dev vx0` has them. */
  const vx = (ns: string, mac: string): FFact[] => fdbOracle(ns, 'vx0').filter((e) => e.mac === mac);

  it('vxlan: add with dst (self, permanent) shows the MAC and its remote', async () => {
    const { ns, nl, idx } = await world();
    assert.deepEqual(vx(ns, '02:00:00:00:01:01'), []);
    await nl.fdb.add({ dev: 'vx0', mac: '02:00:00:00:01:01', dst: '10.1.2.100' });
    assert.deepEqual(vx(ns, '02:00:00:00:01:01'), [{ index: idx.vx0!, mac: '02:00:00:00:01:01', dst: '10.1.2.100', self: true, state: 'permanent' }]);
  });

  it('vxlan: vni and port are passed on', async () => {
    const { ns, nl, idx } = await world();
    await nl.fdb.add({ dev: 'vx0', mac: '02:00:00:00:01:02', dst: '10.1.2.101', vni: 100, port: 4790 });
    assert.deepEqual(vx(ns, '02:00:00:00:01:02'), [
      { index: idx.vx0!, mac: '02:00:00:00:01:02', dst: '10.1.2.101', vni: 100, port: 4790, self: true, state: 'permanent' },
    ]);
  });

  it('vxlan: append adds a second destination for 00:00:00:00:00:00 (flooding to two VTEPs)', async () => {
    const { ns, nl } = await world();
    const zero = '00:00:00:00:00:00';
    await nl.fdb.append({ dev: 'vx0', mac: zero, dst: '10.1.2.101' });
    assert.deepEqual(
      vx(ns, zero).map((e) => e.dst),
      ['10.1.2.101'],
    );
    await nl.fdb.append({ dev: 'vx0', mac: zero, dst: '10.1.2.102' });
    assert.deepEqual(
      vx(ns, zero).map((e) => [e.dst, e.self, e.state]),
      [
        ['10.1.2.101', true, 'permanent'],
        ['10.1.2.102', true, 'permanent'],
      ],
    );
    assert.deepEqual(
      fdbFacts(await nl.fdb.list({ dev: 'vx0' })).filter((e) => e.mac === zero),
      vx(ns, zero),
    );
  });

  it('vxlan: replace changes the destination (still one entry)', async () => {
    const { ns, nl } = await world();
    await nl.fdb.add({ dev: 'vx0', mac: '02:00:00:00:01:01', dst: '10.1.2.100' });
    await nl.fdb.replace({ dev: 'vx0', mac: '02:00:00:00:01:01', dst: '10.1.2.110' });
    assert.deepEqual(
      vx(ns, '02:00:00:00:01:01').map((e) => e.dst),
      ['10.1.2.110'],
    );
  });

  it('vxlan: remove with dst removes that destination only; without dst, the entry', async () => {
    const { ns, nl } = await world();
    const zero = '00:00:00:00:00:00';
    await nl.fdb.append({ dev: 'vx0', mac: zero, dst: '10.1.2.101' });
    await nl.fdb.append({ dev: 'vx0', mac: zero, dst: '10.1.2.102' });
    await nl.fdb.add({ dev: 'vx0', mac: '02:00:00:00:01:01', dst: '10.1.2.100' });
    await nl.fdb.remove({ dev: 'vx0', mac: zero, dst: '10.1.2.101' });
    assert.deepEqual(
      vx(ns, zero).map((e) => e.dst),
      ['10.1.2.102'],
    );
    await nl.fdb.remove({ dev: 'vx0', mac: '02:00:00:00:01:01' });
    assert.deepEqual(vx(ns, '02:00:00:00:01:01'), []);
    assert.deepEqual(
      vx(ns, zero).map((e) => e.dst),
      ['10.1.2.102'],
    );
  });

  it("bridge port, master: true: the entry is in the bridge's table for that port", async () => {
    const { ns, nl, idx } = await world();
    await nl.fdb.add({ dev: 'p0', mac: '02:00:00:00:02:01', master: true });
    const [e] = fdbOracle(ns, 'p0').filter((x) => x.mac === '02:00:00:00:02:01');
    assert.ok(e, 'the entry is not in `bridge fdb show dev p0`');
    assert.equal(e.master, idx.br0);
    assert.equal(e.self, false);
    const [l] = (await nl.fdb.list({ dev: 'p0' })).filter((x) => x.mac === '02:00:00:00:02:01');
    assert.ok(l);
    assert.deepEqual([l.index, l.master, l.self, l.permanent], [idx.p0, idx.br0, false, true]);
  });

  it('bridge port, master: true, permanent: false: a dynamic entry (ages out)', async () => {
    const { ns, nl } = await world();
    await nl.fdb.add({ dev: 'p0', mac: '02:00:00:00:02:02', master: true, permanent: false });
    const [e] = fdbOracle(ns, 'p0').filter((x) => x.mac === '02:00:00:00:02:02');
    assert.ok(e, 'the entry is not in `bridge fdb show dev p0`');
    assert.equal(e.state, '', `bridge shows the entry as "${e.state}", not dynamic`);
    const [l] = (await nl.fdb.list({ dev: 'p0' })).filter((x) => x.mac === '02:00:00:00:02:02');
    assert.equal(l?.permanent, false);
  });

  it('bridge port, master: true: the default entry is a static forwarding entry, not a local one', async () => {
    // FdbSpec.permanent documents the default as "a static entry". For a bridge, NUD_PERMANENT
    // makes the MAC *local* (frames to it go up to the bridge device and are never forwarded
    // to the port); a static forwarding entry is NUD_NOARP (`bridge fdb add ... master static`).
    // Proof by traffic: c2 -> c1 over br0 in `h`, with the entry pinned to c1's port.
    const h = await makeNetns('fdbH');
    const c1 = await makeNetns('fdbC1');
    const c2 = await makeNetns('fdbC2');
    ip(h, 'link', 'add', 'br0', 'type', 'bridge');
    ip(h, 'link', 'set', 'dev', 'br0', 'up');
    const ports: [string, string, string, string][] = [
      ['q1', c1, '10.5.0.1/24', '02:00:00:00:05:01'],
      ['q2', c2, '10.5.0.2/24', '02:00:00:00:05:02'],
    ];
    for (const [port, c, addr, mac] of ports) {
      ip(h, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c);
      ip(h, 'link', 'set', 'dev', port, 'master', 'br0');
      ip(h, 'link', 'set', 'dev', port, 'up');
      ip(c, 'link', 'set', 'dev', 'eth0', 'address', mac);
      ip(c, 'addr', 'add', addr, 'dev', 'eth0');
      ip(c, 'link', 'set', 'dev', 'eth0', 'up');
    }
    assert.equal(await tcpReach(c1, c2, '10.5.0.1'), true, 'the bridge itself must work');
    const nl = await open(h);
    // Forget what the bridge learnt, so that the add is not a duplicate.
    spawnSync('bridge', ['-n', h, 'fdb', 'del', '02:00:00:00:05:01', 'dev', 'q1', 'master'], { stdio: 'ignore' });
    await nl.fdb.add({ dev: 'q1', mac: '02:00:00:00:05:01', master: true });
    const [e] = fdbOracle(h, 'q1').filter((x) => x.mac === '02:00:00:00:05:01');
    assert.ok(e, 'the entry is not in `bridge fdb show dev q1`');
    assert.equal(
      await tcpReach(c1, c2, '10.5.0.1'),
      true,
      `c2 cannot reach c1 once c1's MAC is pinned to its port through the API (bridge shows the entry as "${e.state}")`,
    );
    assert.equal(e.state, 'static', `bridge shows the entry as "${e.state}"`);
  });

  it('list() equals `bridge -j fdb show`, all and by device', async () => {
    const { ns, nl } = await world();
    await nl.fdb.add({ dev: 'vx0', mac: '02:00:00:00:01:01', dst: '10.1.2.100' });
    await nl.fdb.append({ dev: 'vx0', mac: '00:00:00:00:00:00', dst: '10.1.2.101' });
    await nl.fdb.append({ dev: 'vx0', mac: '00:00:00:00:00:00', dst: '10.1.2.102' });
    await nl.fdb.add({ dev: 'p0', mac: '02:00:00:00:02:01', master: true });
    const all = fdbOracle(ns);
    assert.ok(all.length >= 4);
    assert.deepEqual(fdbFacts(await nl.fdb.list()), all);
    for (const dev of ['vx0', 'p0', 'br0']) {
      assert.deepEqual(fdbFacts(await nl.fdb.list({ dev })), fdbOracle(ns, dev), dev);
    }
  });

  it('errors: EEXIST on a duplicate add, ENOENT on removing a missing entry; nothing changes', async () => {
    const { ns, nl } = await world();
    await nl.fdb.add({ dev: 'vx0', mac: '02:00:00:00:01:01', dst: '10.1.2.100' });
    await nl.fdb.add({ dev: 'p0', mac: '02:00:00:00:02:01', master: true });
    const before = fdbOracle(ns);
    await rejectsWith(nl.fdb.add({ dev: 'vx0', mac: '02:00:00:00:01:01', dst: '10.1.2.100' }), 'EEXIST', 'RTM_NEWNEIGH');
    await rejectsWith(nl.fdb.add({ dev: 'vx0', mac: '02:00:00:00:01:01', dst: '10.1.2.200' }), 'EEXIST', 'RTM_NEWNEIGH');
    await rejectsWith(nl.fdb.add({ dev: 'p0', mac: '02:00:00:00:02:01', master: true }), 'EEXIST', 'RTM_NEWNEIGH');
    await rejectsWith(nl.fdb.remove({ dev: 'vx0', mac: '02:00:00:00:01:77' }), 'ENOENT', 'RTM_DELNEIGH');
    await rejectsWith(nl.fdb.remove({ dev: 'p0', mac: '02:00:00:00:02:77', master: true }), 'ENOENT', 'RTM_DELNEIGH');
    assert.deepEqual(fdbOracle(ns), before);
  });

  it('bad input: ERR_INVALID_MAC, ERR_INVALID_IP, ERR_INVALID_ARGUMENT, ENODEV; nothing changes', async () => {
    const { ns, nl } = await world();
    const before = fdbOracle(ns);
    for (const mac of BAD_MACS) {
      await rejectsWith(nl.fdb.add({ dev: 'vx0', mac: mac as string, dst: '10.1.2.100' }), 'ERR_INVALID_MAC');
      await rejectsWith(nl.fdb.append({ dev: 'vx0', mac: mac as string, dst: '10.1.2.100' }), 'ERR_INVALID_MAC');
    }
    await rejectsWith(nl.fdb.add({ dev: 'vx0', mac: '02:00:00:00:01:01', dst: '10.1.2' }), 'ERR_INVALID_IP');
    await rejectsWith(nl.fdb.add({ dev: 'vx0', mac: '02:00:00:00:01:01', dst: '10.1.2.100', vni: 0x1000000 }), 'ERR_INVALID_ARGUMENT');
    await rejectsWith(nl.fdb.add({ dev: 'vx0', mac: '02:00:00:00:01:01', dst: '10.1.2.100', port: 0 }), 'ERR_INVALID_ARGUMENT');
    await rejectsWith(nl.fdb.add({ dev: 'p0', mac: '02:00:00:00:01:01', master: true, vlan: 4095 }), 'ERR_INVALID_ARGUMENT');
    await rejectsWith(nl.fdb.add({ dev: 'p0', mac: '02:00:00:00:01:01', master: 'yes' as unknown as boolean }), 'ERR_INVALID_ARGUMENT');
    await rejectsWith(nl.fdb.add({ dev: 'vx0', mac: '02:00:00:00:01:01', remote: '10.1.2.100' } as unknown as FdbSpec), 'ERR_INVALID_ARGUMENT');
    await rejectsWith(nl.fdb.add({ dev: 'nope0', mac: '02:00:00:00:01:01', dst: '10.1.2.100' }), 'ENODEV', 'RTM_GETLINK');
    assert.deepEqual(fdbOracle(ns), before);
  });

  it('a handle on A never touches B', async () => {
    const a = await world();
    const b = await world();
    // B's bridge keeps learning on its own (p1's IPv6 router solicitations and DAD reach br0 through
    // p0 at any moment): those entries come and go with no handle involved. What a handle could have
    // made is a static entry, so that is what must stay the same.
    const made = (ns: string): FFact[] => fdbOracle(ns).filter((e) => e.state !== '');
    const beforeB = made(b.ns);
    await a.nl.fdb.add({ dev: 'vx0', mac: '02:00:00:00:01:01', dst: '10.1.2.100' });
    assert.equal(vx(a.ns, '02:00:00:00:01:01').length, 1);
    assert.deepEqual(made(b.ns), beforeB);
  });
});
