/**
 * Routes against the kernel: every call of `nl.routes` is checked with an independent oracle
 * (`ip -j -N route show`, numeric so nothing depends on name tables) and, where it proves
 * something, with real TCP traffic between two namespaces the test made. Each test builds its
 * own namespaces (unique names, torn down afterwards by the sandbox helpers, even on failure).
 */
import * as assert from 'node:assert/strict';
import { Netlink, NetlinkError } from '../../lib/index';
import type { Route, RouteSpec } from '../../lib/index';
import { tcpReach } from '../helpers/traffic';
import { rejectsWith } from '../helpers/assert';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';
import { ipJson, sh } from '../helpers/oracle';

/** `ip -n NS ...`: world building, independent of the code under test. */
function ip(ns: string, ...args: string[]): void {
  sh('ip', ['-n', ns, ...args]);
}

// Kernel uapi numbers (linux/rtnetlink.h), written out here so the oracle side does not use the
// library's tables.
const SCOPE: Record<string, number> = { universe: 0, site: 200, link: 253, host: 254, nowhere: 255 };
const PROTO: Record<string, number> = { unspec: 0, redirect: 1, kernel: 2, boot: 3, static: 4, ra: 9, dhcp: 16 };
const TYPE: Record<string, number> = {
  unspec: 0,
  unicast: 1,
  local: 2,
  broadcast: 3,
  anycast: 4,
  multicast: 5,
  blackhole: 6,
  unreachable: 7,
  prohibit: 8,
  throw: 9,
};

/** The facts both sides can tell about a route, in one numeric shape. */
interface Fact {
  family: 4 | 6;
  dst: string;
  table: number;
  type: number;
  protocol: number;
  scope: number;
  gateway?: string;
  dev?: number;
  metric?: number;
  src?: string;
  onlink: boolean;
}

const key = (f: Fact): string => JSON.stringify([f.family, f.table, f.dst, f.metric ?? -1, f.dev ?? 0, f.gateway ?? '', f.type]);
const sortFacts = (a: Fact[]): Fact[] => [...a].sort((x, y) => key(x).localeCompare(key(y)));

function linkIndexes(ns: string): Record<string, number> {
  const links = ipJson(['link', 'show'], ns) as { ifname: string; ifindex: number }[];
  return Object.fromEntries(links.map((l) => [l.ifname, l.ifindex]));
}

/**
 * What `ip -j -N -F route show table T [dev D]` shows. `ip` leaves out what the filter fixes
 * (the table of a one-table listing, the dev of a one-dev listing) and what is the default
 * (main table, boot protocol, universe scope, unicast type): filled in here.
 */
function oracle(ns: string, family: 4 | 6, table: number | 'all' = 'all', dev?: string): Fact[] {
  const idx = linkIndexes(ns);
  const args = [`-${family}`, '-N', 'route', 'show', 'table', String(table)];
  if (dev !== undefined) args.push('dev', dev);
  let routes: Record<string, unknown>[];
  try {
    routes = ipJson(args, ns) as Record<string, unknown>[];
  } catch (e) {
    // `ip -6 route show table N` fails when the family has no table N: no routes there.
    if (table !== 'all' && /FIB table does not exist/.test(String((e as { stderr?: unknown }).stderr ?? e))) return [];
    throw e;
  }
  return sortFacts(
    routes.map((r) => {
      const dst = String(r.dst);
      const f: Fact = {
        family,
        dst: dst === 'default' ? 'default' : dst.includes('/') ? dst : `${dst}/${family === 4 ? 32 : 128}`,
        table: r.table !== undefined ? Number(r.table) : table === 'all' ? 254 : table,
        type: r.type !== undefined ? Number(r.type) : 1,
        protocol: r.protocol !== undefined ? Number(r.protocol) : 3,
        scope: r.scope !== undefined ? Number(r.scope) : 0,
        onlink: Array.isArray(r.flags) && r.flags.includes('onlink'),
      };
      if (typeof r.gateway === 'string') f.gateway = r.gateway;
      const devName = typeof r.dev === 'string' ? r.dev : dev;
      if (devName !== undefined) f.dev = idx[devName];
      if (typeof r.metric === 'number') f.metric = r.metric;
      if (typeof r.prefsrc === 'string') f.src = r.prefsrc;
      return f;
    }),
  );
}

/** Both families, every table. */
function oracleAll(ns: string): Fact[] {
  return sortFacts([...oracle(ns, 4), ...oracle(ns, 6)]);
}

function num(names: Record<string, number>, v: string): number {
  return names[v] ?? Number(v);
}

/** The same facts from the API's answer. */
function facts(list: Route[]): Fact[] {
  return sortFacts(
    list.map((r) => {
      const f: Fact = {
        family: r.family,
        dst: r.dst,
        table: r.table,
        type: num(TYPE, r.type),
        protocol: num(PROTO, r.protocol),
        scope: num(SCOPE, r.scope),
        onlink: r.onlink,
      };
      if (r.gateway !== undefined) f.gateway = r.gateway;
      if (r.dev !== undefined) f.dev = r.dev;
      if (r.metric !== undefined) f.metric = r.metric;
      if (r.src !== undefined) f.src = r.src;
      return f;
    }),
  );
}

/** The one route of the oracle with this destination (in this family / table). */
function find(ns: string, family: 4 | 6, dst: string, table: number | 'all' = 'all'): Fact[] {
  return oracle(ns, family, table).filter((r) => r.dst === dst);
}

describe('kernel: routes', function () {
  useSandbox();
  this.timeout(30000);

  /** A handle on `ns`, closed at teardown (before its namespace is deleted: LIFO). */
  async function open(ns: string): Promise<Netlink> {
    const nl = await Netlink.open({ netns: ns });
    registerCleanup(() => nl.close(), `close netlink handle on ${ns}`);
    return nl;
  }

  /**
   * A namespace with a veth pair d0/d1, both up, no IPv6 link-local addresses; d0 has
   * 10.1.2.3/24 and fd00::1/64, d1 has 10.3.0.3/24 (set up with `ip`, not the API).
   */
  async function world(): Promise<{ ns: string; nl: Netlink; d0: number; d1: number }> {
    const ns = await makeNetns('route');
    ip(ns, 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1');
    for (const d of ['d0', 'd1']) {
      ip(ns, 'link', 'set', 'dev', d, 'addrgenmode', 'none');
      ip(ns, 'link', 'set', 'dev', d, 'up');
    }
    ip(ns, 'addr', 'add', '10.1.2.3/24', 'dev', 'd0');
    ip(ns, 'addr', 'add', 'fd00::1/64', 'dev', 'd0', 'nodad');
    ip(ns, 'addr', 'add', '10.3.0.3/24', 'dev', 'd1');
    const idx = linkIndexes(ns);
    return { ns, nl: await open(ns), d0: idx.d0!, d1: idx.d1! };
  }

  describe('add', () => {
    it('a route with a gateway: static protocol, universe scope, through the link that reaches the gateway', async () => {
      const { ns, nl, d0 } = await world();
      assert.deepEqual(find(ns, 4, '10.20.0.0/16'), []);
      await nl.routes.add({ dst: '10.20.0.0/16', gateway: '10.1.2.1' });
      assert.deepEqual(find(ns, 4, '10.20.0.0/16'), [
        { family: 4, dst: '10.20.0.0/16', table: 254, type: 1, protocol: 4, scope: 0, gateway: '10.1.2.1', dev: d0, onlink: false },
      ]);
    });

    it('a route with only a dev: scope link, no gateway', async () => {
      const { ns, nl, d1 } = await world();
      await nl.routes.add({ dst: '10.30.0.0/16', dev: 'd1' });
      assert.deepEqual(find(ns, 4, '10.30.0.0/16'), [{ family: 4, dst: '10.30.0.0/16', table: 254, type: 1, protocol: 4, scope: 253, dev: d1, onlink: false }]);
    });

    it('a bare address is a host route (/32, /128)', async () => {
      const { ns, nl, d0 } = await world();
      await nl.routes.add({ dst: '10.31.0.5', dev: 'd0' });
      await nl.routes.add({ dst: 'fd31::5', dev: 'd0' });
      assert.equal(find(ns, 4, '10.31.0.5/32').length, 1);
      assert.equal(find(ns, 4, '10.31.0.5/32')[0]!.dev, d0);
      assert.equal(find(ns, 6, 'fd31::5/128').length, 1);
    });

    it('default routes, IPv4 and IPv6', async () => {
      const { ns, nl, d0 } = await world();
      await nl.routes.add({ dst: 'default', gateway: '10.1.2.1' });
      await nl.routes.add({ dst: 'default', gateway: 'fd00::2' });
      assert.deepEqual(find(ns, 4, 'default'), [
        { family: 4, dst: 'default', table: 254, type: 1, protocol: 4, scope: 0, gateway: '10.1.2.1', dev: d0, onlink: false },
      ]);
      const [v6] = find(ns, 6, 'default');
      assert.ok(v6);
      assert.equal(v6.gateway, 'fd00::2');
      assert.equal(v6.dev, d0);
      assert.equal(v6.protocol, 4);
      // The kernel's own choice for this destination is now the new route.
      const [got] = ipJson(['-4', 'route', 'get', '198.51.100.7'], ns) as { gateway?: string; dev?: string }[];
      assert.equal(got?.gateway, '10.1.2.1');
      assert.equal(got?.dev, 'd0');
    });

    it('a metric: routes to one destination with different metrics coexist, the lowest wins', async () => {
      const { ns, nl } = await world();
      await nl.routes.add({ dst: '10.40.0.0/16', gateway: '10.1.2.1', metric: 50 });
      await nl.routes.add({ dst: '10.40.0.0/16', gateway: '10.1.2.2', metric: 20 });
      assert.deepEqual(
        find(ns, 4, '10.40.0.0/16')
          .map((r) => [r.metric, r.gateway])
          .sort(),
        [
          [20, '10.1.2.2'],
          [50, '10.1.2.1'],
        ],
      );
      const [got] = ipJson(['-4', 'route', 'get', '10.40.1.1'], ns) as { gateway?: string }[];
      assert.equal(got?.gateway, '10.1.2.2');
      await nl.routes.add({ dst: 'fd40::/64', dev: 'd0', metric: 7 });
      assert.deepEqual(
        find(ns, 6, 'fd40::/64').map((r) => r.metric),
        [7],
      );
    });

    it('table 100 (and a table id above 255): in that table, not in main', async () => {
      const { ns, nl, d0 } = await world();
      await nl.routes.add({ dst: '10.50.0.0/16', gateway: '10.1.2.1', table: 100 });
      await nl.routes.add({ dst: '10.51.0.0/16', gateway: '10.1.2.1', table: 1000 });
      await nl.routes.add({ dst: 'fd50::/64', gateway: 'fd00::2', table: 100 });
      assert.deepEqual(oracle(ns, 4, 100), [
        { family: 4, dst: '10.50.0.0/16', table: 100, type: 1, protocol: 4, scope: 0, gateway: '10.1.2.1', dev: d0, onlink: false },
      ]);
      assert.deepEqual(oracle(ns, 4, 1000), [
        { family: 4, dst: '10.51.0.0/16', table: 1000, type: 1, protocol: 4, scope: 0, gateway: '10.1.2.1', dev: d0, onlink: false },
      ]);
      assert.deepEqual(
        oracle(ns, 6, 100).map((r) => [r.dst, r.gateway, r.table]),
        [['fd50::/64', 'fd00::2', 100]],
      );
      assert.deepEqual(find(ns, 4, '10.50.0.0/16', 254), []);
      assert.deepEqual(find(ns, 6, 'fd50::/64', 254), []);
    });

    it('onlink: a gateway outside every prefix is accepted on the named link and flagged onlink', async () => {
      const { ns, nl, d0 } = await world();
      await nl.routes.add({ dst: '10.60.0.0/16', gateway: '192.168.99.1', dev: 'd0', onlink: true });
      assert.deepEqual(find(ns, 4, '10.60.0.0/16'), [
        { family: 4, dst: '10.60.0.0/16', table: 254, type: 1, protocol: 4, scope: 0, gateway: '192.168.99.1', dev: d0, onlink: true },
      ]);
    });

    it('IPv6: with a gateway and with a dev only', async () => {
      const { ns, nl, d0 } = await world();
      await nl.routes.add({ dst: 'fd10::/64', gateway: 'fd00::2' });
      await nl.routes.add({ dst: 'fd20::/48', dev: 'd0' });
      const [viaGw] = find(ns, 6, 'fd10::/64');
      assert.deepEqual(viaGw && [viaGw.gateway, viaGw.dev, viaGw.protocol, viaGw.type, viaGw.metric], ['fd00::2', d0, 4, 1, 1024]);
      const [viaDev] = find(ns, 6, 'fd20::/48');
      assert.deepEqual(viaDev && [viaDev.gateway, viaDev.dev, viaDev.protocol], [undefined, d0, 4]);
    });

    it('types blackhole, unreachable and prohibit need neither gateway nor dev', async () => {
      const { ns, nl } = await world();
      await nl.routes.add({ dst: '10.32.0.0/16', type: 'blackhole' });
      await nl.routes.add({ dst: '10.33.0.0/16', type: 'unreachable' });
      await nl.routes.add({ dst: '10.34.0.0/16', type: 'prohibit' });
      const mine = ['10.32.0.0/16', '10.33.0.0/16', '10.34.0.0/16'];
      const got = oracle(ns, 4, 254)
        .filter((r) => mine.includes(r.dst))
        .map((r) => [r.dst, r.type, r.dev]);
      assert.deepEqual(got, [
        ['10.32.0.0/16', 6, undefined],
        ['10.33.0.0/16', 7, undefined],
        ['10.34.0.0/16', 8, undefined],
      ]);
    });

    it('src sets the preferred source address; protocol can be chosen', async () => {
      const { ns, nl } = await world();
      await nl.routes.add({ dst: '10.35.0.0/16', dev: 'd0', src: '10.1.2.3' });
      await nl.routes.add({ dst: '10.36.0.0/16', dev: 'd0', protocol: 'boot' });
      await nl.routes.add({ dst: '10.37.0.0/16', dev: 'd0', protocol: 99 });
      assert.equal(find(ns, 4, '10.35.0.0/16')[0]?.src, '10.1.2.3');
      assert.equal(find(ns, 4, '10.36.0.0/16')[0]?.protocol, 3);
      assert.equal(find(ns, 4, '10.37.0.0/16')[0]?.protocol, 99);
    });
  });

  describe('replace', () => {
    it('changes the gateway of an existing route; the route count stays the same', async () => {
      const { ns, nl } = await world();
      await nl.routes.add({ dst: '10.20.0.0/16', gateway: '10.1.2.1' });
      await nl.routes.add({ dst: 'fd10::/64', gateway: 'fd00::2' });
      const before4 = oracle(ns, 4).length;
      const before6 = oracle(ns, 6).length;
      await nl.routes.replace({ dst: '10.20.0.0/16', gateway: '10.1.2.9' });
      await nl.routes.replace({ dst: 'fd10::/64', gateway: 'fd00::9' });
      assert.deepEqual(
        find(ns, 4, '10.20.0.0/16').map((r) => r.gateway),
        ['10.1.2.9'],
      );
      assert.deepEqual(
        find(ns, 6, 'fd10::/64').map((r) => r.gateway),
        ['fd00::9'],
      );
      assert.equal(oracle(ns, 4).length, before4);
      assert.equal(oracle(ns, 6).length, before6);
    });

    it('replaces the default route and the one in table 100, and creates a route that is not there', async () => {
      const { ns, nl, d1 } = await world();
      await nl.routes.add({ dst: 'default', gateway: '10.1.2.1' });
      await nl.routes.add({ dst: '10.50.0.0/16', gateway: '10.1.2.1', table: 100 });
      await nl.routes.replace({ dst: 'default', gateway: '10.3.0.1' });
      await nl.routes.replace({ dst: '10.50.0.0/16', gateway: '10.1.2.7', table: 100 });
      await nl.routes.replace({ dst: '10.52.0.0/16', gateway: '10.1.2.1' });
      assert.deepEqual(
        find(ns, 4, 'default').map((r) => [r.gateway, r.dev]),
        [['10.3.0.1', d1]],
      );
      assert.deepEqual(
        oracle(ns, 4, 100).map((r) => [r.dst, r.gateway]),
        [['10.50.0.0/16', '10.1.2.7']],
      );
      assert.deepEqual(
        find(ns, 4, '10.52.0.0/16').map((r) => r.gateway),
        ['10.1.2.1'],
      );
    });
  });

  describe('remove', () => {
    it('removes exactly the route named (IPv4, IPv6, default, table 100)', async () => {
      const { ns, nl } = await world();
      const specs: RouteSpec[] = [
        { dst: '10.20.0.0/16', gateway: '10.1.2.1' },
        { dst: '10.21.0.0/16', gateway: '10.1.2.1' },
        { dst: 'default', gateway: '10.1.2.1' },
        { dst: 'fd10::/64', gateway: 'fd00::2' },
        { dst: '10.50.0.0/16', gateway: '10.1.2.1', table: 100 },
      ];
      const empty = oracleAll(ns);
      for (const s of specs) await nl.routes.add(s);
      const full = oracleAll(ns);
      assert.equal(full.length, empty.length + specs.length);
      await nl.routes.remove({ dst: '10.20.0.0/16' });
      assert.deepEqual(find(ns, 4, '10.20.0.0/16'), []);
      assert.equal(find(ns, 4, '10.21.0.0/16').length, 1, 'a neighbour route went too');
      await nl.routes.remove({ dst: 'default', gateway: '10.1.2.1' });
      await nl.routes.remove({ dst: 'fd10::/64' });
      await nl.routes.remove({ dst: '10.50.0.0/16', table: 100 });
      await nl.routes.remove({ dst: '10.21.0.0/16', gateway: '10.1.2.1', dev: 'd0' });
      assert.deepEqual(oracleAll(ns), empty);
    });

    it('with a metric, removes only the route of that metric', async () => {
      const { ns, nl } = await world();
      await nl.routes.add({ dst: '10.40.0.0/16', gateway: '10.1.2.1', metric: 10 });
      await nl.routes.add({ dst: '10.40.0.0/16', gateway: '10.1.2.2', metric: 20 });
      await nl.routes.remove({ dst: '10.40.0.0/16', metric: 20 });
      assert.deepEqual(
        find(ns, 4, '10.40.0.0/16').map((r) => [r.metric, r.gateway]),
        [[10, '10.1.2.1']],
      );
    });
  });

  describe('list', () => {
    async function populated(): Promise<{ ns: string; nl: Netlink; d0: number; d1: number }> {
      const w = await world();
      await w.nl.routes.add({ dst: 'default', gateway: '10.1.2.1' });
      await w.nl.routes.add({ dst: '10.20.0.0/16', gateway: '10.1.2.1', metric: 5 });
      await w.nl.routes.add({ dst: '10.30.0.0/16', dev: 'd1' });
      await w.nl.routes.add({ dst: '10.31.0.7', dev: 'd1', src: '10.3.0.3' });
      await w.nl.routes.add({ dst: '10.60.0.0/16', gateway: '192.168.99.1', dev: 'd0', onlink: true });
      await w.nl.routes.add({ dst: '10.32.0.0/16', type: 'blackhole' });
      await w.nl.routes.add({ dst: '10.50.0.0/16', gateway: '10.1.2.1', table: 100 });
      await w.nl.routes.add({ dst: '10.51.0.0/16', gateway: '10.1.2.1', table: 1000 });
      await w.nl.routes.add({ dst: 'fd10::/64', gateway: 'fd00::2' });
      await w.nl.routes.add({ dst: 'default', gateway: 'fd00::2', metric: 300 });
      await w.nl.routes.add({ dst: 'fd50::/64', dev: 'd0', table: 100 });
      return w;
    }

    it('list() is the main table of both families, equal to `ip route show table main`', async () => {
      const { ns, nl } = await populated();
      const want = sortFacts([...oracle(ns, 4, 254), ...oracle(ns, 6, 254)]);
      assert.ok(want.length >= 10);
      assert.deepEqual(facts(await nl.routes.list()), want);
      assert.deepEqual(facts(await nl.routes.list({ table: 'main' })), want);
    });

    it('list({ table: "all" }) equals `ip route show table all`, local and custom tables included', async () => {
      const { ns, nl } = await populated();
      const want = oracleAll(ns);
      assert.ok(want.some((r) => r.table === 255));
      assert.ok(want.some((r) => r.table === 1000));
      assert.deepEqual(facts(await nl.routes.list({ table: 'all' })), want);
    });

    it('list({ table }) equals `ip route show table N` for 100, 1000 and local', async () => {
      const { ns, nl } = await populated();
      for (const t of [100, 1000, 255] as const) {
        const want = sortFacts([...oracle(ns, 4, t), ...oracle(ns, 6, t)]);
        assert.ok(want.length > 0, `table ${t}`);
        assert.deepEqual(facts(await nl.routes.list({ table: t === 255 ? 'local' : t })), want, `table ${t}`);
      }
      assert.deepEqual(await nl.routes.list({ table: 4242 }), []);
    });

    it('list({ family }) and list({ dev }) equal the filtered oracle', async () => {
      const { ns, nl } = await populated();
      assert.deepEqual(facts(await nl.routes.list({ family: 4 })), oracle(ns, 4, 254));
      assert.deepEqual(facts(await nl.routes.list({ family: 6 })), oracle(ns, 6, 254));
      assert.deepEqual(facts(await nl.routes.list({ family: 6, table: 100 })), oracle(ns, 6, 100));
      for (const dev of ['d0', 'd1']) {
        const want = sortFacts([...oracle(ns, 4, 254, dev), ...oracle(ns, 6, 254, dev)]);
        assert.ok(want.length > 0);
        assert.deepEqual(facts(await nl.routes.list({ dev })), want, dev);
      }
      assert.deepEqual(facts(await nl.routes.list({ dev: 'd1', family: 4, table: 'all' })), oracle(ns, 4, 'all', 'd1'));
    });

    it('bad filters are refused', async () => {
      const { nl } = await world();
      await rejectsWith(nl.routes.list({ dev: 'nope0' }), 'ENODEV', 'RTM_GETLINK');
      await rejectsWith(nl.routes.list({ table: 0 }), 'ERR_INVALID_ARGUMENT');
      await rejectsWith(nl.routes.list({ tabel: 100 } as unknown as { table: number }), 'ERR_INVALID_ARGUMENT');
    });
  });

  describe('errors', () => {
    it('adding a route that exists: NetlinkError EEXIST from RTM_NEWROUTE, nothing changes', async () => {
      const { ns, nl } = await world();
      await nl.routes.add({ dst: '10.20.0.0/16', gateway: '10.1.2.1' });
      await nl.routes.add({ dst: 'fd10::/64', gateway: 'fd00::2' });
      await nl.routes.add({ dst: '10.50.0.0/16', dev: 'd0', table: 100 });
      const before = oracleAll(ns);
      await rejectsWith(nl.routes.add({ dst: '10.20.0.0/16', gateway: '10.1.2.1' }), 'EEXIST', 'RTM_NEWROUTE');
      // Same destination, table and metric: EEXIST even with another gateway (that is what replace is for).
      await rejectsWith(nl.routes.add({ dst: '10.20.0.0/16', gateway: '10.1.2.5' }), 'EEXIST', 'RTM_NEWROUTE');
      await rejectsWith(nl.routes.add({ dst: 'fd10::/64', gateway: 'fd00::2' }), 'EEXIST', 'RTM_NEWROUTE');
      await rejectsWith(nl.routes.add({ dst: '10.50.0.0/16', dev: 'd0', table: 100 }), 'EEXIST', 'RTM_NEWROUTE');
      assert.deepEqual(oracleAll(ns), before);
    });

    it('removing a route that is not there: NetlinkError ESRCH from RTM_DELROUTE', async () => {
      const { ns, nl } = await world();
      await nl.routes.add({ dst: '10.20.0.0/16', gateway: '10.1.2.1' });
      const before = oracleAll(ns);
      await rejectsWith(nl.routes.remove({ dst: '10.99.0.0/16' }), 'ESRCH', 'RTM_DELROUTE');
      await rejectsWith(nl.routes.remove({ dst: 'fd99::/64' }), 'ESRCH', 'RTM_DELROUTE');
      await rejectsWith(nl.routes.remove({ dst: '10.20.0.0/16', gateway: '10.1.2.77' }), 'ESRCH', 'RTM_DELROUTE');
      await rejectsWith(nl.routes.remove({ dst: '10.20.0.0/16', table: 100 }), 'ESRCH', 'RTM_DELROUTE');
      assert.deepEqual(oracleAll(ns), before);
    });

    it('a gateway no link reaches: ENETUNREACH (IPv4), EHOSTUNREACH (IPv6), from RTM_NEWROUTE', async () => {
      const { ns, nl } = await world();
      const before = oracleAll(ns);
      await rejectsWith(nl.routes.add({ dst: '10.70.0.0/16', gateway: '192.168.99.1' }), 'ENETUNREACH', 'RTM_NEWROUTE');
      // On a named link whose prefix does not cover it (and without onlink):
      await rejectsWith(nl.routes.add({ dst: '10.70.0.0/16', gateway: '192.168.99.1', dev: 'd0' }), 'ENETUNREACH', 'RTM_NEWROUTE');
      await rejectsWith(nl.routes.add({ dst: '10.70.0.0/16', gateway: '10.1.2.1', dev: 'd1' }), 'ENETUNREACH', 'RTM_NEWROUTE');
      await rejectsWith(nl.routes.add({ dst: 'fd70::/64', gateway: 'fd99::1' }), 'EHOSTUNREACH', 'RTM_NEWROUTE');
      assert.deepEqual(oracleAll(ns), before);
    });

    it('a destination with host bits set is ERR_INVALID_CIDR; a bad CIDR too', async () => {
      const { ns, nl } = await world();
      const before = oracleAll(ns);
      for (const dst of ['10.9.0.1/16', 'fd00::1/64', '10.9.0.0/33', '300.9.0.0/16', 'nonsense/8', '10.9.0.0/']) {
        await rejectsWith(nl.routes.add({ dst, dev: 'd0' }), 'ERR_INVALID_CIDR');
        await rejectsWith(nl.routes.remove({ dst }), 'ERR_INVALID_CIDR');
      }
      assert.deepEqual(oracleAll(ns), before);
    });

    it('trailing text after the prefix length is ERR_INVALID_CIDR, not silently dropped', async () => {
      const { ns, nl } = await world();
      const before = oracleAll(ns);
      await rejectsWith(nl.routes.add({ dst: '10.46.0.0/16/3', dev: 'd0' }), 'ERR_INVALID_CIDR');
      assert.deepEqual(oracleAll(ns), before, 'a route was added from a malformed destination');
    });

    it('a gateway or src of the other family is ERR_INVALID_IP; a malformed one too', async () => {
      const { ns, nl } = await world();
      const before = oracleAll(ns);
      await rejectsWith(nl.routes.add({ dst: '10.9.0.0/16', gateway: 'fd00::2' }), 'ERR_INVALID_IP');
      await rejectsWith(nl.routes.add({ dst: 'fd09::/64', gateway: '10.1.2.1' }), 'ERR_INVALID_IP');
      await rejectsWith(nl.routes.add({ dst: '10.9.0.0/16', dev: 'd0', src: 'fd00::1' }), 'ERR_INVALID_IP');
      await rejectsWith(nl.routes.add({ dst: '10.9.0.0/16', gateway: '10.1.2' }), 'ERR_INVALID_IP');
      await rejectsWith(nl.routes.add({ dst: '10.9.0.0/16', gateway: 'gw' }), 'ERR_INVALID_IP');
      await rejectsWith(nl.routes.add({ dst: '10.9.0.0', gateway: 'fd00::2' }), 'ERR_INVALID_IP');
      assert.deepEqual(oracleAll(ns), before);
    });

    it('invalid specs are ERR_INVALID_ARGUMENT; a missing link is ENODEV; nothing changes', async () => {
      const { ns, nl } = await world();
      const before = oracleAll(ns);
      await rejectsWith(nl.routes.add({ dst: '10.9.0.0/16' }), 'ERR_INVALID_ARGUMENT');
      await rejectsWith(nl.routes.add({ dst: '10.9.0.0/16', dev: 'd0', table: 0 }), 'ERR_INVALID_ARGUMENT');
      await rejectsWith(nl.routes.add({ dst: '10.9.0.0/16', dev: 'd0', metric: -1 }), 'ERR_INVALID_ARGUMENT');
      await rejectsWith(nl.routes.add({ dst: '10.9.0.0/16', dev: 'd0', metric: 1.5 }), 'ERR_INVALID_ARGUMENT');
      await rejectsWith(nl.routes.add({ dst: '10.9.0.0/16', dev: 'd0', scope: 'galaxy' as 'link' }), 'ERR_INVALID_ARGUMENT');
      await rejectsWith(nl.routes.add({ dst: '10.9.0.0/16', dev: 'd0', type: 'warp' as 'unicast' }), 'ERR_INVALID_ARGUMENT');
      await rejectsWith(nl.routes.add({ dst: '10.9.0.0/16', dev: 'd0', protocol: 256 }), 'ERR_INVALID_ARGUMENT');
      await rejectsWith(nl.routes.add({ dst: '10.9.0.0/16', dev: 'd0', via: '10.1.2.1' } as unknown as RouteSpec), 'ERR_INVALID_ARGUMENT');
      await rejectsWith(nl.routes.add({ dst: '10.9.0.0/16', dev: 'nope0' }), 'ENODEV', 'RTM_GETLINK');
      await rejectsWith(nl.routes.add({ dst: '10.9.0.0/16', dev: 9999 }), 'ENODEV', 'RTM_NEWROUTE');
      assert.deepEqual(oracleAll(ns), before);
    });

    it('route types outside the documented set ("nat", "xresolve") are refused before the kernel', async () => {
      const { ns, nl } = await world();
      const before = oracleAll(ns);
      for (const type of ['nat', 'xresolve', 'unspec']) {
        await rejectsWith(nl.routes.add({ dst: '10.9.0.0/16', dev: 'd0', type: type as 'unicast' }), 'ERR_INVALID_ARGUMENT');
      }
      assert.deepEqual(oracleAll(ns), before);
    });

    it('kernel refusals carry the extended ACK text', async () => {
      const { nl } = await world();
      await assert.rejects(nl.routes.add({ dst: '10.48.0.0/16', gateway: '10.1.2.1', scope: 'host' }), (e: unknown) => {
        assert.ok(e instanceof NetlinkError);
        assert.equal(e.code, 'EINVAL');
        assert.equal(e.operation, 'RTM_NEWROUTE');
        assert.match(e.extack ?? '', /gateway/i);
        return true;
      });
    });
  });

  describe('namespaces', () => {
    it('a route added through a handle on A is not in B', async () => {
      const a = await world();
      const b = await world();
      const beforeB = oracleAll(b.ns);
      await a.nl.routes.add({ dst: '10.20.0.0/16', gateway: '10.1.2.1' });
      await a.nl.routes.add({ dst: 'default', gateway: 'fd00::2' });
      assert.equal(find(a.ns, 4, '10.20.0.0/16').length, 1);
      assert.deepEqual(oracleAll(b.ns), beforeB, "namespace B's routes changed");
      await rejectsWith(b.nl.routes.remove({ dst: '10.20.0.0/16' }), 'ESRCH', 'RTM_DELROUTE');
      assert.equal(find(a.ns, 4, '10.20.0.0/16').length, 1);
    });
  });

  describe('traffic', () => {
    /**
     * A and B joined by a veth (a0 in A, b0 in B); 10.77.0.0/24 and fd77::/64 on it, and B has
     * 10.88.0.1 and fd88::1 on its loopback: A reaches those only through a route via B.
     */
    async function pair(): Promise<{ A: string; B: string; nlA: Netlink }> {
      const A = await makeNetns('routeA');
      const B = await makeNetns('routeB');
      ip(A, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'b0', 'netns', B);
      ip(A, 'addr', 'add', '10.77.0.1/24', 'dev', 'a0');
      ip(A, 'addr', 'add', 'fd77::1/64', 'dev', 'a0', 'nodad');
      ip(B, 'addr', 'add', '10.77.0.2/24', 'dev', 'b0');
      ip(B, 'addr', 'add', 'fd77::2/64', 'dev', 'b0', 'nodad');
      ip(B, 'addr', 'add', '10.88.0.1/32', 'dev', 'lo');
      ip(B, 'addr', 'add', 'fd88::1/128', 'dev', 'lo');
      ip(A, 'link', 'set', 'dev', 'a0', 'up');
      ip(B, 'link', 'set', 'dev', 'b0', 'up');
      return { A, B, nlA: await open(A) };
    }

    it('IPv4: a default route added through the API carries traffic; removed, it does not', async () => {
      const { A, B, nlA } = await pair();
      assert.equal(await tcpReach(B, A, '10.77.0.2'), true, 'the link itself must work');
      assert.equal(await tcpReach(B, A, '10.88.0.1'), false, 'no route yet');
      await nlA.routes.add({ dst: 'default', gateway: '10.77.0.2' });
      assert.equal(await tcpReach(B, A, '10.88.0.1'), true, 'A could not reach 10.88.0.1 via its default route');
      await nlA.routes.remove({ dst: 'default' });
      assert.equal(await tcpReach(B, A, '10.88.0.1'), false, 'traffic still flows after the route was removed');
    });

    it('IPv6: a route added through the API carries traffic; a route in table 100 alone does not', async () => {
      const { A, B, nlA } = await pair();
      await nlA.routes.add({ dst: 'fd88::/64', gateway: 'fd77::2', table: 100 });
      assert.equal(await tcpReach(B, A, 'fd88::1'), false, 'table 100 is not consulted without a rule');
      await nlA.routes.add({ dst: 'fd88::/64', gateway: 'fd77::2' });
      assert.equal(await tcpReach(B, A, 'fd88::1'), true, 'A could not reach fd88::1 via its route');
    });

    it('replace: moving the route to a gateway that does not answer breaks the traffic', async () => {
      const { A, B, nlA } = await pair();
      await nlA.routes.add({ dst: '10.88.0.0/24', gateway: '10.77.0.2' });
      assert.equal(await tcpReach(B, A, '10.88.0.1'), true);
      await nlA.routes.replace({ dst: '10.88.0.0/24', gateway: '10.77.0.99' });
      assert.equal(await tcpReach(B, A, '10.88.0.1'), false, 'the replaced route still leads to B');
      await nlA.routes.replace({ dst: '10.88.0.0/24', gateway: '10.77.0.2' });
      assert.equal(await tcpReach(B, A, '10.88.0.1'), true);
    });
  });
});
