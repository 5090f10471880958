/**
 * Addresses against the kernel: every call of `nl.addresses` is checked with an independent
 * oracle (`ip -j addr show`, `ip -j route show`) and, where it proves something, with real TCP
 * traffic between two namespaces the test made. Each test builds its own namespaces (unique
 * names, torn down afterwards by the sandbox helpers, even on failure).
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Netlink, NetlinkError, NsnetError } from '../../lib/index';
import type { Address } from '../../lib/index';
import { tcpReach } from '../helpers/traffic';
import { rejectsWith } from '../helpers/assert';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';
import { ipJson, sh } from '../helpers/oracle';

/** `ip -n NS ...`: world building (links), independent of the code under test. */
function ip(ns: string, ...args: string[]): void {
  sh('ip', ['-n', ns, ...args]);
}

/** The facts both sides can tell about an address, in one shape. */
interface Fact {
  index: number;
  family: 4 | 6;
  cidr: string;
  scope: string;
  label?: string;
  broadcast?: string;
  nodad: boolean;
  noprefixroute: boolean;
}

const sortFacts = (a: Fact[]): Fact[] => [...a].sort((x, y) => `${x.index} ${x.cidr}`.localeCompare(`${y.index} ${y.cidr}`));

/** What `ip -j [-n ns] ...args` shows (args like ['addr', 'show', 'dev', 'd0']). */
function oracle(ns: string, args: string[] = ['addr', 'show']): Fact[] {
  const links = ipJson(args, ns) as { ifindex: number; addr_info?: Record<string, unknown>[] }[];
  const out: Fact[] = [];
  for (const l of links) {
    for (const a of l.addr_info ?? []) {
      const f: Fact = {
        index: l.ifindex,
        family: a.family === 'inet6' ? 6 : 4,
        cidr: `${String(a.local)}/${Number(a.prefixlen)}`,
        scope: a.scope === 'global' ? 'universe' : String(a.scope),
        nodad: a.nodad === true,
        noprefixroute: a.noprefixroute === true,
      };
      if (typeof a.label === 'string') f.label = a.label;
      if (typeof a.broadcast === 'string') f.broadcast = a.broadcast;
      out.push(f);
    }
  }
  return sortFacts(out);
}

/** The same facts from the API's answer. */
function facts(list: Address[]): Fact[] {
  return sortFacts(
    list.map((a) => {
      assert.equal(a.cidr, `${a.address}/${a.prefixLength}`);
      const f: Fact = {
        index: a.index,
        family: a.family,
        cidr: a.cidr,
        scope: a.scope,
        nodad: a.flags.includes('nodad'),
        noprefixroute: a.flags.includes('noprefixroute'),
      };
      if (a.label !== undefined) f.label = a.label;
      if (a.broadcast !== undefined) f.broadcast = a.broadcast;
      return f;
    }),
  );
}

function ifindex(ns: string, dev: string): number {
  const [l] = ipJson(['link', 'show', 'dev', dev], ns) as { ifindex: number }[];
  assert.ok(l, `link ${dev} not found in ${ns}`);
  return l.ifindex;
}

describe('kernel: addresses', function () {
  useSandbox();
  this.timeout(30000);

  /** A handle on `ns`, closed at teardown (before its namespace is deleted: LIFO). */
  async function open(ns: string): Promise<Netlink> {
    const nl = await Netlink.open({ netns: ns });
    registerCleanup(() => nl.close(), `close netlink handle on ${ns}`);
    return nl;
  }

  /** A namespace with a veth pair d0/d1, both up, without IPv6 link-local addresses (a stable oracle). */
  async function world(): Promise<{ ns: string; nl: Netlink }> {
    const ns = await makeNetns('addr');
    ip(ns, 'link', 'add', 'd0', 'type', 'veth', 'peer', 'name', 'd1');
    for (const d of ['d0', 'd1']) {
      ip(ns, 'link', 'set', 'dev', d, 'addrgenmode', 'none');
      ip(ns, 'link', 'set', 'dev', d, 'up');
    }
    return { ns, nl: await open(ns) };
  }

  describe('add', () => {
    it('adds an IPv4 address with the broadcast derived from the prefix (as "brd +") and its prefix route', async () => {
      const { ns, nl } = await world();
      assert.deepEqual(oracle(ns, ['addr', 'show', 'dev', 'd0']), []);
      await nl.addresses.add('d0', '10.1.2.3/24');
      assert.deepEqual(oracle(ns, ['addr', 'show', 'dev', 'd0']), [
        {
          index: ifindex(ns, 'd0'),
          family: 4,
          cidr: '10.1.2.3/24',
          scope: 'universe',
          label: 'd0',
          broadcast: '10.1.2.255',
          nodad: false,
          noprefixroute: false,
        },
      ]);
      const routes = ipJson(['route', 'show', 'dev', 'd0'], ns) as { dst: string; prefsrc?: string; protocol?: string }[];
      assert.deepEqual(
        routes.map((r) => [r.dst, r.prefsrc, r.protocol]),
        [['10.1.2.0/24', '10.1.2.3', 'kernel']],
      );
    });

    it('derives the broadcast for other prefix lengths too, and none for /31 and /32', async () => {
      const { ns, nl } = await world();
      await nl.addresses.add('d0', '172.20.5.9/16');
      await nl.addresses.add('d0', '192.168.7.130/26');
      await nl.addresses.add('d0', '10.9.9.0/31');
      await nl.addresses.add('d0', '10.8.8.8/32');
      const got = Object.fromEntries(oracle(ns, ['addr', 'show', 'dev', 'd0']).map((a) => [a.cidr, a.broadcast ?? null]));
      assert.deepEqual(got, {
        '172.20.5.9/16': '172.20.255.255',
        '192.168.7.130/26': '192.168.7.191',
        '10.9.9.0/31': null,
        '10.8.8.8/32': null,
      });
    });

    it('honours an explicit broadcast and broadcast: false', async () => {
      const { ns, nl } = await world();
      await nl.addresses.add('d0', '10.1.6.4/24', { broadcast: '10.1.6.7' });
      await nl.addresses.add('d0', '10.1.7.4/24', { broadcast: false });
      const got = Object.fromEntries(oracle(ns, ['addr', 'show', 'dev', 'd0']).map((a) => [a.cidr, a.broadcast ?? null]));
      assert.deepEqual(got, { '10.1.6.4/24': '10.1.6.7', '10.1.7.4/24': null });
    });

    it('adds an IPv6 address with nodad: not tentative, flagged nodad, usable at once', async () => {
      const { ns, nl } = await world();
      await nl.addresses.add('d0', 'fd00::1/64', { nodad: true });
      const [info] = (ipJson(['-6', 'addr', 'show', 'dev', 'd0'], ns) as { addr_info: Record<string, unknown>[] }[]).flatMap((l) => l.addr_info);
      assert.ok(info);
      assert.equal(info.local, 'fd00::1');
      assert.equal(info.prefixlen, 64);
      assert.equal(info.nodad, true);
      assert.equal(info.tentative, undefined, 'a nodad address must not be tentative');
      // Usable at once: a socket can bind to it (a tentative address would give EADDRNOTAVAIL).
      const bind = spawnSync(
        'ip',
        [
          'netns',
          'exec',
          ns,
          process.execPath,
          '-e',
          "require('net').createServer().listen(0, 'fd00::1', function () { this.close(); }).on('error', () => process.exit(3))",
        ],
        { timeout: 10000 },
      );
      assert.equal(bind.status, 0, 'binding to the nodad address failed');
    });

    it('adds an IPv6 address without nodad: the kernel runs DAD (tentative, not nodad)', async () => {
      const { ns, nl } = await world();
      await nl.addresses.add('d0', 'fd00::2/64');
      const [info] = (ipJson(['-6', 'addr', 'show', 'dev', 'd0'], ns) as { addr_info: Record<string, unknown>[] }[]).flatMap((l) => l.addr_info);
      assert.ok(info);
      assert.equal(info.local, 'fd00::2');
      assert.equal(info.nodad, undefined);
      assert.equal(info.tentative, true);
    });

    it('noPrefixRoute: the address is there but the kernel adds no prefix route', async () => {
      const { ns, nl } = await world();
      await nl.addresses.add('d0', '10.1.4.4/24', { noPrefixRoute: true });
      await nl.addresses.add('d0', 'fd04::4/64', { noPrefixRoute: true, nodad: true });
      const a = oracle(ns, ['addr', 'show', 'dev', 'd0']);
      assert.deepEqual(
        a.map((x) => [x.cidr, x.noprefixroute]),
        [
          ['10.1.4.4/24', true],
          ['fd04::4/64', true],
        ],
      );
      assert.deepEqual(ipJson(['-4', 'route', 'show', 'dev', 'd0'], ns), []);
      assert.deepEqual(ipJson(['-6', 'route', 'show', 'dev', 'd0'], ns), []);
    });

    it('sets an IPv4 label', async () => {
      const { ns, nl } = await world();
      await nl.addresses.add('d0', '10.1.3.4/24', { label: 'd0x' });
      assert.deepEqual(
        oracle(ns, ['addr', 'show', 'dev', 'd0']).map((a) => a.label),
        ['d0x'],
      );
    });

    it('accepts an alias label "d0:web", as `ip addr add ... label d0:web` does', async () => {
      const { ns, nl } = await world();
      // The kernel takes it (proof, independent of nsnet):
      ip(ns, 'addr', 'add', '10.1.8.4/24', 'dev', 'd0', 'label', 'd0:ip');
      assert.deepEqual(
        oracle(ns, ['addr', 'show', 'dev', 'd0']).map((a) => a.label),
        ['d0:ip'],
      );
      await nl.addresses.add('d0', '10.1.9.4/24', { label: 'd0:web' });
      assert.deepEqual(
        oracle(ns, ['addr', 'show', 'dev', 'd0']).map((a) => [a.cidr, a.label]),
        [
          ['10.1.8.4/24', 'd0:ip'],
          ['10.1.9.4/24', 'd0:web'],
        ],
      );
    });

    it('accepts the link by index as well as by name', async () => {
      const { ns, nl } = await world();
      await nl.addresses.add(ifindex(ns, 'd1'), '10.2.0.1/24');
      assert.deepEqual(
        oracle(ns, ['addr', 'show', 'dev', 'd1']).map((a) => a.cidr),
        ['10.2.0.1/24'],
      );
    });
  });

  describe('list', () => {
    async function populated(): Promise<{ ns: string; nl: Netlink }> {
      const w = await world();
      await w.nl.addresses.add('d0', '10.1.2.3/24');
      await w.nl.addresses.add('d0', '10.1.3.3/28', { label: 'd0x' });
      await w.nl.addresses.add('d0', 'fd00::1/64', { nodad: true });
      await w.nl.addresses.add('d1', '10.1.2.4/24');
      await w.nl.addresses.add('d1', 'fd00::2/64', { nodad: true });
      return w;
    }

    it('list() equals `ip -j addr show` (every link, both families, loopback included)', async () => {
      const { ns, nl } = await populated();
      const want = oracle(ns);
      assert.equal(want.length, 7, 'lo 127.0.0.1 + ::1, and the five added');
      assert.deepEqual(facts(await nl.addresses.list()), want);
    });

    it('list({ dev }) equals `ip -j addr show dev DEV`, by name and by index', async () => {
      const { ns, nl } = await populated();
      for (const dev of ['d0', 'd1', 'lo']) {
        const want = oracle(ns, ['addr', 'show', 'dev', dev]);
        assert.ok(want.length > 0);
        assert.deepEqual(facts(await nl.addresses.list({ dev })), want, dev);
        assert.deepEqual(facts(await nl.addresses.list({ dev: ifindex(ns, dev) })), want, `${dev} by index`);
      }
    });

    it('list({ family }) equals `ip -4 / -6 addr show`, also combined with dev', async () => {
      const { ns, nl } = await populated();
      const v4 = oracle(ns, ['-4', 'addr', 'show']);
      const v6 = oracle(ns, ['-6', 'addr', 'show']);
      assert.equal(v4.length, 4);
      assert.equal(v6.length, 3);
      assert.deepEqual(facts(await nl.addresses.list({ family: 4 })), v4);
      assert.deepEqual(facts(await nl.addresses.list({ family: 6 })), v6);
      assert.deepEqual(facts(await nl.addresses.list({ dev: 'd0', family: 6 })), oracle(ns, ['-6', 'addr', 'show', 'dev', 'd0']));
      assert.deepEqual(facts(await nl.addresses.list({ dev: 'd1', family: 4 })), oracle(ns, ['-4', 'addr', 'show', 'dev', 'd1']));
    });

    it('list() of a link without addresses is empty; bad filters are refused', async () => {
      const { nl } = await world();
      assert.deepEqual(await nl.addresses.list({ dev: 'd0' }), []);
      await rejectsWith(nl.addresses.list({ dev: 'nope0' }), 'ENODEV');
      await rejectsWith(nl.addresses.list({ family: 5 as 4 }), 'ERR_INVALID_ARGUMENT');
      await rejectsWith(nl.addresses.list({ devv: 'd0' } as unknown as { dev: string }), 'ERR_INVALID_ARGUMENT');
    });
  });

  describe('remove', () => {
    it('removes exactly the address named (IPv4 and IPv6), and its prefix route goes with it', async () => {
      const { ns, nl } = await world();
      await nl.addresses.add('d0', '10.1.2.3/24');
      await nl.addresses.add('d0', '10.1.5.3/24');
      await nl.addresses.add('d0', 'fd00::1/64', { nodad: true });
      await nl.addresses.add('d0', 'fd01::1/64', { nodad: true });
      await nl.addresses.remove('d0', '10.1.2.3/24');
      await nl.addresses.remove('d0', 'fd00::1/64');
      assert.deepEqual(
        oracle(ns, ['addr', 'show', 'dev', 'd0']).map((a) => a.cidr),
        ['10.1.5.3/24', 'fd01::1/64'],
      );
      const routes = (ipJson(['-4', 'route', 'show', 'dev', 'd0'], ns) as { dst: string }[]).map((r) => r.dst);
      assert.deepEqual(routes, ['10.1.5.0/24']);
      await nl.addresses.remove(ifindex(ns, 'd0'), '10.1.5.3/24');
      await nl.addresses.remove('d0', 'fd01::1/64');
      assert.deepEqual(oracle(ns, ['addr', 'show', 'dev', 'd0']), []);
    });

    it('a removed address is gone from list() too', async () => {
      const { nl } = await world();
      await nl.addresses.add('d0', '10.1.2.3/24');
      assert.deepEqual(
        (await nl.addresses.list({ dev: 'd0' })).map((a) => a.cidr),
        ['10.1.2.3/24'],
      );
      await nl.addresses.remove('d0', '10.1.2.3/24');
      assert.deepEqual(await nl.addresses.list({ dev: 'd0' }), []);
    });
  });

  describe('errors', () => {
    it('adding an address the link has already: NetlinkError EEXIST from RTM_NEWADDR, nothing changes', async () => {
      const { ns, nl } = await world();
      await nl.addresses.add('d0', '10.1.2.3/24');
      await nl.addresses.add('d0', 'fd00::1/64', { nodad: true });
      const before = ipJson(['addr', 'show'], ns);
      await rejectsWith(nl.addresses.add('d0', '10.1.2.3/24'), 'EEXIST', 'RTM_NEWADDR');
      await rejectsWith(nl.addresses.add('d0', 'fd00::1/64', { nodad: true }), 'EEXIST', 'RTM_NEWADDR');
      assert.deepEqual(ipJson(['addr', 'show'], ns), before);
    });

    it('removing an address the link does not have: NetlinkError EADDRNOTAVAIL from RTM_DELADDR', async () => {
      const { ns, nl } = await world();
      await nl.addresses.add('d0', '10.1.2.3/24');
      const before = ipJson(['addr', 'show'], ns);
      await rejectsWith(nl.addresses.remove('d0', '10.9.9.9/24'), 'EADDRNOTAVAIL', 'RTM_DELADDR');
      await rejectsWith(nl.addresses.remove('d0', 'fd00::9/64'), 'EADDRNOTAVAIL', 'RTM_DELADDR');
      // On the other link of the pair: that one does not have it either.
      await rejectsWith(nl.addresses.remove('d1', '10.1.2.3/24'), 'EADDRNOTAVAIL', 'RTM_DELADDR');
      assert.deepEqual(ipJson(['addr', 'show'], ns), before);
    });

    it('a link that does not exist: ENODEV (by name and by index), nothing changes', async () => {
      const { ns, nl } = await world();
      const before = ipJson(['addr', 'show'], ns);
      await rejectsWith(nl.addresses.add('nope0', '10.1.2.3/24'), 'ENODEV');
      await rejectsWith(nl.addresses.add(9999, '10.1.2.3/24'), 'ENODEV', 'RTM_NEWADDR');
      await rejectsWith(nl.addresses.remove('nope0', '10.1.2.3/24'), 'ENODEV');
      await rejectsWith(nl.addresses.remove(9999, '10.1.2.3/24'), 'ENODEV', 'RTM_DELADDR');
      assert.deepEqual(ipJson(['addr', 'show'], ns), before);
    });

    it('an invalid CIDR is ERR_INVALID_CIDR (not a NetlinkError), and the address count stays the same', async () => {
      const { ns, nl } = await world();
      await nl.addresses.add('d0', '10.1.2.3/24');
      const before = oracle(ns);
      const bad = [
        '300.1.1.1/8',
        '10.0.0.1/33',
        'fd00::1/129',
        'nonsense',
        '10.0.0.1',
        '10.0.0.1/',
        '10.0.0.1/-1',
        '/24',
        '10.0.0/24',
        '10.0.0.1/24 ',
        ' 10.0.0.1/24',
        '10.0.0.1/0x18',
      ];
      for (const cidr of bad) {
        await assert.rejects(
          nl.addresses.add('d0', cidr),
          (e: unknown) => {
            assert.ok(e instanceof NsnetError);
            assert.ok(!(e instanceof NetlinkError), `${cidr}: validation must happen before the kernel`);
            assert.equal(e.code, 'ERR_INVALID_CIDR', `${cidr}: ${e.message}`);
            return true;
          },
          cidr,
        );
        await rejectsWith(nl.addresses.remove('d0', cidr), 'ERR_INVALID_CIDR');
      }
      await rejectsWith(nl.addresses.add('d0', 42 as unknown as string), 'ERR_INVALID_CIDR');
      assert.deepEqual(oracle(ns), before);
      assert.equal(before.length, 3);
    });

    it('trailing text after the prefix length is ERR_INVALID_CIDR, not silently dropped', async () => {
      const { ns, nl } = await world();
      const before = oracle(ns);
      for (const cidr of ['10.3.0.1/24/8', 'fd03::1/64/1', '10.3.0.2/24/']) {
        await rejectsWith(nl.addresses.add('d0', cidr, { nodad: true }), 'ERR_INVALID_CIDR');
      }
      assert.deepEqual(oracle(ns), before, 'an address was added from a malformed CIDR');
    });

    it('invalid options are refused before anything is sent', async () => {
      const { ns, nl } = await world();
      const before = oracle(ns);
      await rejectsWith(nl.addresses.add('d0', '10.1.2.3/24', { broadcast: '10.1.2' }), 'ERR_INVALID_IP');
      await rejectsWith(nl.addresses.add('d0', '10.1.2.3/24', { broadcast: 'fd00::ff' }), 'ERR_INVALID_IP');
      await rejectsWith(nl.addresses.add('d0', '10.1.2.3/24', { nodda: true } as unknown as { nodad: boolean }), 'ERR_INVALID_ARGUMENT');
      await rejectsWith(nl.addresses.add('d0', '10.1.2.3/24', { label: 'x'.repeat(16) }), 'ERR_INVALID_NAME');
      assert.deepEqual(oracle(ns), before);
    });
  });

  describe('namespaces', () => {
    it('a handle opened on namespace A never touches namespace B', async () => {
      const a = await world();
      const b = await world();
      assert.notEqual(a.ns, b.ns);
      const beforeB = ipJson(['addr', 'show'], b.ns);
      await a.nl.addresses.add('d0', '10.1.2.3/24');
      await a.nl.addresses.add('d0', 'fd00::1/64', { nodad: true });
      assert.deepEqual(
        oracle(a.ns, ['addr', 'show', 'dev', 'd0']).map((x) => x.cidr),
        ['10.1.2.3/24', 'fd00::1/64'],
      );
      assert.deepEqual(ipJson(['addr', 'show'], b.ns), beforeB, "namespace B's addresses changed");
      // B's handle sees none of it, and removing it through B fails: it is not there.
      assert.deepEqual(await b.nl.addresses.list({ dev: 'd0' }), []);
      await rejectsWith(b.nl.addresses.remove('d0', '10.1.2.3/24'), 'EADDRNOTAVAIL', 'RTM_DELADDR');
      assert.deepEqual(
        oracle(a.ns, ['addr', 'show', 'dev', 'd0']).map((x) => x.cidr),
        ['10.1.2.3/24', 'fd00::1/64'],
      );
    });

    it('a link that exists only in B is ENODEV through a handle on A', async () => {
      const a = await world();
      const b = await world();
      ip(b.ns, 'link', 'add', 'onlyb', 'type', 'veth', 'peer', 'name', 'onlyb1');
      const beforeB = ipJson(['addr', 'show'], b.ns);
      await rejectsWith(a.nl.addresses.add('onlyb', '10.1.2.3/24'), 'ENODEV');
      assert.deepEqual(ipJson(['addr', 'show'], b.ns), beforeB);
    });
  });

  describe('traffic', () => {
    /** Two namespaces joined by a veth (a0 in A, b0 in B), links up, no addresses. */
    async function pair(): Promise<{ A: string; B: string; nlA: Netlink; nlB: Netlink }> {
      const A = await makeNetns('addrA');
      const B = await makeNetns('addrB');
      ip(A, 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'b0', 'netns', B);
      ip(A, 'link', 'set', 'dev', 'a0', 'up');
      ip(B, 'link', 'set', 'dev', 'b0', 'up');
      return { A, B, nlA: await open(A), nlB: await open(B) };
    }

    it("IPv4: with addresses added through the API, A reaches B over TCP; after removing B's, it does not", async () => {
      const { A, B, nlA, nlB } = await pair();
      assert.equal(await tcpReach(B, A, '127.0.0.1'), false, 'sanity: loopback of B is not reachable from A');
      await nlA.addresses.add('a0', '10.77.0.1/24');
      await nlB.addresses.add('b0', '10.77.0.2/24');
      assert.equal(await tcpReach(B, A, '10.77.0.2'), true, 'A could not reach B at 10.77.0.2');
      await nlB.addresses.remove('b0', '10.77.0.2/24');
      assert.equal(await tcpReach(B, A, '10.77.0.2'), false, 'B still answers on a removed address');
    });

    it('IPv6 with nodad: A reaches B over TCP right after the addresses are added', async () => {
      const { A, B, nlA, nlB } = await pair();
      await nlA.addresses.add('a0', 'fd77::1/64', { nodad: true });
      await nlB.addresses.add('b0', 'fd77::2/64', { nodad: true });
      assert.equal(await tcpReach(B, A, 'fd77::2'), true, 'A could not reach B at fd77::2');
    });
  });
});
