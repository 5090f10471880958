/**
 * Conntrack over ctnetlink against the kernel. Real UDP flows run between namespaces the test
 * made (never the machine's own); every listing, count, deletion and flush is checked with an
 * independent oracle, the `conntrack` tool (`conntrack -L -o extended,id`), and the use nsnet
 * has for it — forgetting the flows of a re-pointed published UDP port — is proven with traffic.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { Conntrack } from '../../lib/index';
import type { ConntrackEntry, ConntrackFilter } from '../../lib/index';
import { NetlinkError, NsnetError } from '../../lib/errors';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';
import { conntrackList, sh } from '../helpers/oracle';

/** `ip -n NS ...`: world building, independent of the code under test. */
function ip(ns: string, ...args: string[]): void {
  sh('ip', ['-n', ns, ...args]);
}

function sysctl(ns: string, key: string, value: string): void {
  sh('sysctl', ['-q', '-w', `${key}=${value}`], ns);
}

/** Asserts that a promise rejects with an NsnetError of this code that did not come from the kernel. */
async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof NsnetError, `expected an NsnetError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(!(e instanceof NetlinkError), `expected a validation error before the kernel, got ${e.message}`);
    return true;
  });
}

/**
 * Starts a UDP server in `ns` answering every datagram on each port with `answer`; killed at
 * teardown of the current scope.
 */
async function udpServer(ns: string, ports: number[], answer: string): Promise<void> {
  const server = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      `
    const dgram = require('dgram');
    let bound = 0;
    for (const port of ${JSON.stringify(ports)}) {
      const s = dgram.createSocket({ type: 'udp6' });   // '::' also receives IPv4
      s.on('message', (m, r) => s.send(${JSON.stringify(answer)}, r.port, r.address));
      s.on('error', (e) => { console.error(e.message); process.exit(2); });
      s.bind(port, '::', () => { if (++bound === ${ports.length}) console.log('ready'); });
    }
    setTimeout(() => process.exit(0), 600000);`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  registerCleanup(() => server.kill(), `stop UDP server in ${ns}`);
  const ready = await new Promise<boolean>((resolve) => {
    server.stdout.once('data', () => resolve(true));
    server.once('exit', () => resolve(false));
  });
  assert.ok(ready, `the UDP server in ${ns} did not start`);
}

interface Flow {
  dst: string;
  dport: number;
  sport: number;
}

/**
 * Sends one datagram per flow from `ns` (from the given source port) and waits for every answer;
 * returns the answers in flow order.
 */
function udpExchange(ns: string, flows: Flow[]): string[] {
  const r = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      `
    const dgram = require('dgram');
    const flows = ${JSON.stringify(flows)};
    const answers = new Array(flows.length);
    let left = flows.length;
    flows.forEach((f, i) => {
      const s = dgram.createSocket(f.dst.includes(':') ? 'udp6' : 'udp4');
      s.on('message', (m) => { answers[i] = String(m); s.close(); if (--left === 0) { console.log(JSON.stringify(answers)); process.exit(0); } });
      s.on('error', (e) => { console.error(e.message); process.exit(2); });
      s.bind(f.sport, () => s.send('ping', f.dport, f.dst));
    });
    setTimeout(() => { console.error('no answer'); process.exit(3); }, 3000);`,
    ],
    { encoding: 'utf8', timeout: 10000 },
  );
  assert.equal(r.status, 0, `UDP exchange from ${ns} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}

/** What `conntrack -L -o extended,id` says about an entry. */
interface OracleEntry {
  id: number;
  family: 4 | 6;
  protocol: string;
  orig: { src: string; dst: string; srcPort?: number; dstPort?: number };
  reply: { src: string; dst: string; srcPort?: number; dstPort?: number };
  mark: number;
  zone: number;
  flags: string[];
  packets: number[];
  bytes: number[];
}

/** The oracle's entries of `ns`, optionally filtered by conntrack's own options. */
function oracle(ns: string, args: string[] = []): OracleEntry[] {
  return conntrackList(ns, ['-o', 'extended,id', ...args]).map((line) => {
    const t = line.split(/\s+/);
    const e: OracleEntry = {
      id: 0,
      family: t[0] === 'ipv6' ? 6 : 4,
      protocol: t[2],
      orig: { src: '', dst: '' },
      reply: { src: '', dst: '' },
      mark: 0,
      zone: 0,
      flags: [],
      packets: [],
      bytes: [],
    };
    let dir = e.orig;
    for (const tok of t.slice(3)) {
      if (/^\[.*\]$/.test(tok)) {
        e.flags.push(tok.slice(1, -1));
        continue;
      }
      const eq = tok.indexOf('=');
      if (eq < 0) continue;
      const k = tok.slice(0, eq);
      const val = tok.slice(eq + 1);
      if (k === 'src') {
        if (e.orig.src) dir = e.reply;
        dir.src = val;
      } else if (k === 'dst') dir.dst = val;
      else if (k === 'sport') dir.srcPort = Number(val);
      else if (k === 'dport') dir.dstPort = Number(val);
      else if (k === 'packets') e.packets.push(Number(val));
      else if (k === 'bytes') e.bytes.push(Number(val));
      else if (k === 'mark') e.mark = Number(val);
      else if (k === 'zone') e.zone = Number(val);
      else if (k === 'id') e.id = Number(val);
    }
    return e;
  });
}

/** The facts both sides tell about an entry. */
function factsOf(e: ConntrackEntry): unknown {
  return {
    id: e.id,
    family: e.family,
    protocol: e.protocol,
    orig: e.orig,
    reply: e.reply,
    mark: e.mark,
    zone: e.zone,
    assured: e.status.includes('assured'),
    unreplied: !e.status.includes('seen_reply'),
    packets: e.counters ? [e.counters.orig.packets, e.counters.reply.packets] : [],
    bytes: e.counters ? [e.counters.orig.bytes, e.counters.reply.bytes] : [],
  };
}

function oracleFacts(e: OracleEntry): unknown {
  return {
    id: e.id,
    family: e.family,
    protocol: e.protocol,
    orig: e.orig,
    reply: e.reply,
    mark: e.mark,
    zone: e.zone,
    assured: e.flags.includes('ASSURED'),
    unreplied: e.flags.includes('UNREPLIED'),
    packets: e.packets,
    bytes: e.bytes,
  };
}

const byId = (a: { id: number }, b: { id: number }): number => a.id - b.id;
const ids = (list: { id: number }[]): number[] => list.map((e) => e.id).sort((a, b) => a - b);

describe('Conntrack (ctnetlink)', function () {
  this.timeout(30000);
  useSandbox();

  // A client namespace (conntrack on, inspected) and a server namespace, joined by a veth.
  let client: string;
  let server: string;
  let ct: Conntrack;

  // The flows every test starts from (in the client's table):
  //   5353 v4, 5354 v4 marked 42, 5355 v4 in zone 7, 5353 v6, 5356 v6.
  const FLOWS: Flow[] = [
    { dst: '10.77.0.2', dport: 5353, sport: 40001 },
    { dst: '10.77.0.2', dport: 5354, sport: 40002 },
    { dst: '10.77.0.2', dport: 5355, sport: 40003 },
    { dst: 'fd77::2', dport: 5353, sport: 40004 },
    { dst: 'fd77::2', dport: 5356, sport: 40005 },
  ];

  before(async () => {
    client = await makeNetns('ctc');
    server = await makeNetns('cts');
    ip(client, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', 'netns', server);
    ip(client, 'addr', 'add', '10.77.0.1/24', 'dev', 'va');
    ip(client, 'addr', 'add', 'fd77::1/64', 'dev', 'va', 'nodad');
    ip(server, 'addr', 'add', '10.77.0.2/24', 'dev', 'vb');
    ip(server, 'addr', 'add', 'fd77::2/64', 'dev', 'vb', 'nodad');
    ip(client, 'link', 'set', 'va', 'up');
    ip(server, 'link', 'set', 'vb', 'up');
    // A ct rule makes the kernel track connections in this namespace; the mark and zone rules
    // give entries something to filter by.
    sh('nft', ['-f', '-'], client, {
      input: `table inet t {
        chain raw_out { type filter hook output priority raw; udp dport 5355 ct zone set 7; }
        chain raw_pre { type filter hook prerouting priority raw; udp sport 5355 ct zone set 7; }
        chain out { type filter hook output priority 0; udp dport 5354 ct mark set 42; ct state new,established accept; }
      }`,
    });
    sysctl(client, 'net.netfilter.nf_conntrack_acct', '1');
    sysctl(client, 'net.netfilter.nf_conntrack_udp_timeout', '600');
    sysctl(client, 'net.netfilter.nf_conntrack_udp_timeout_stream', '600');
    await udpServer(server, [5353, 5354, 5355, 5356], 'pong');
    ct = await Conntrack.open({ netns: client });
    registerCleanup(() => ct.close(), 'close conntrack handle');
  });

  beforeEach(() => {
    sh('conntrack', ['-F'], client);
    assert.deepEqual(
      udpExchange(client, FLOWS),
      FLOWS.map(() => 'pong'),
    );
    assert.equal(oracle(client).length, FLOWS.length, 'the oracle sees one entry per flow');
  });

  it('lists every entry exactly as conntrack -L does', async () => {
    const ours = await ct.list();
    const theirs = oracle(client);
    assert.equal(ours.length, theirs.length);
    assert.deepEqual(ours.sort(byId).map(factsOf), theirs.sort(byId).map(oracleFacts));
  });

  it('decodes status, mark, zone, counters and timeout', async () => {
    const list = await ct.list();
    for (const e of list) {
      assert.equal(e.protocol, 'udp');
      assert.ok(e.status.includes('confirmed') && e.status.includes('seen_reply'), e.status.join(','));
      assert.ok(e.timeout > 500 && e.timeout <= 600, `timeout ${e.timeout}`);
      assert.equal(e.state, undefined);
      assert.deepEqual(e.counters?.orig.packets, 1);
      assert.deepEqual(e.counters?.reply.packets, 1);
      assert.equal(e.raw.tupleOrig !== undefined && e.raw.tupleReply !== undefined, true);
    }
    const marked = list.filter((e) => e.mark !== 0);
    assert.deepEqual(
      marked.map((e) => [e.orig.dstPort, e.mark]),
      [[5354, 42]],
    );
    const zoned = list.filter((e) => e.zone !== 0);
    assert.deepEqual(
      zoned.map((e) => [e.orig.dstPort, e.zone]),
      [[5355, 7]],
    );
    const v6 = list.find((e) => e.family === 6 && e.orig.dstPort === 5356);
    assert.deepEqual(v6?.orig, { src: 'fd77::1', dst: 'fd77::2', srcPort: 40005, dstPort: 5356 });
    assert.deepEqual(v6?.reply, { src: 'fd77::2', dst: 'fd77::1', srcPort: 5356, dstPort: 40005 });
  });

  it('filters and counts by each criterion as conntrack does', async () => {
    const cases: [ConntrackFilter, string[]][] = [
      [{}, []],
      [{ family: 4 }, ['-f', 'ipv4']],
      [{ family: 6 }, ['-f', 'ipv6']],
      [{ protocol: 'udp' }, ['-p', 'udp']],
      [{ protocol: 17 }, ['-p', 'udp']],
      [{ protocol: 'tcp' }, ['-p', 'tcp']],
      [{ origSrc: '10.77.0.1' }, ['-s', '10.77.0.1']],
      [{ origDst: 'fd77::2' }, ['-d', 'fd77::2']],
      [{ origDst: 'fd77:0:0::2' }, ['-d', 'fd77::2']],
      [{ replySrc: '10.77.0.2' }, ['-r', '10.77.0.2']],
      [{ replyDst: 'fd77::1' }, ['-q', 'fd77::1']],
      [{ protocol: 'udp', origDstPort: 5353 }, ['-p', 'udp', '--dport', '5353']],
      [{ protocol: 'udp', origSrcPort: 40002 }, ['-p', 'udp', '--sport', '40002']],
      [{ protocol: 'udp', replySrcPort: 5356 }, ['-p', 'udp', '--reply-port-src', '5356']],
      [{ protocol: 'udp', replyDstPort: 40001 }, ['-p', 'udp', '--reply-port-dst', '40001']],
      [{ mark: 42 }, ['-m', '42']],
      [{ zone: 7 }, ['-w', '7']],
      [{ family: 4, origDstPort: 5353 }, ['-f', 'ipv4', '-p', 'udp', '--dport', '5353']],
      [{ origDst: '10.77.0.2', origDstPort: 5356 }, ['-d', '10.77.0.2', '-p', 'udp', '--dport', '5356']],
    ];
    for (const [filter, args] of cases) {
      const want = ids(oracle(client, args));
      const got = ids(await ct.list(filter));
      assert.deepEqual(got, want, `list(${JSON.stringify(filter)}) vs conntrack -L ${args.join(' ')}`);
      assert.equal(await ct.count(filter), want.length, `count(${JSON.stringify(filter)})`);
    }
    assert.equal(await ct.count({ protocol: 'udp', origDstPort: 5353 }), 2);
    assert.equal(await ct.count({ protocol: 'tcp' }), 0);
  });

  it('deletes just the entries the filter names', async () => {
    const before = oracle(client);
    const target = before.find((e) => e.family === 4 && e.orig.dstPort === 5353);
    assert.ok(target);
    assert.equal(await ct.delete({ family: 4, protocol: 'udp', origDstPort: 5353 }), 1);
    const after = oracle(client);
    assert.deepEqual(ids(after), ids(before.filter((e) => e.id !== target.id)), 'every other flow stays, the IPv6 one on 5353 too');
    assert.equal(await ct.delete({ family: 4, protocol: 'udp', origDstPort: 5353 }), 0, 'nothing left to delete');
    assert.equal(await ct.delete({ origDstPort: 5353 }), 1, 'then the IPv6 flow');
    assert.deepEqual(oracle(client, ['-p', 'udp', '--dport', '5353']), []);
    assert.equal(oracle(client).length, FLOWS.length - 2);
  });

  it('deletes the entries matching any of several filters (both families, one listing)', async () => {
    const before = oracle(client);
    const gone = before.filter((e) => (e.family === 6 && e.orig.dstPort === 5353) || (e.family === 4 && e.orig.dstPort === 5354) || e.orig.dstPort === 5356);
    assert.equal(gone.length, 3);
    assert.equal(
      await ct.delete([
        { family: 6, protocol: 'udp', origDstPort: 5353 },
        { origDst: '10.77.0.2', origDstPort: 5354 },
        { protocol: 'udp', origDstPort: 5356 },
        { family: 4, origDstPort: 9 }, // matches nothing
      ]),
      3,
    );
    assert.deepEqual(ids(oracle(client)), ids(before.filter((e) => !gone.includes(e))), 'the IPv4 flow to 5353 and the zoned one stay');
    assert.equal(await ct.delete([]), 0, 'no filter: nothing to do');
    await assert.rejects(ct.delete([{ origDstPort: 5355 }, {}]), (e: any) => e.code === 'ERR_INVALID_ARGUMENT');
    await assert.rejects(ct.delete([{ origDst: 'nope' }]), (e: any) => e.code === 'ERR_INVALID_IP');
    assert.equal(oracle(client).length, FLOWS.length - 3, 'a refused request deleted nothing');
  });

  it('deletes entries of a non-default zone and by mark', async () => {
    assert.equal(await ct.delete({ zone: 7 }), 1);
    assert.deepEqual(oracle(client, ['-w', '7']), []);
    assert.equal(await ct.delete({ mark: 42 }), 1);
    assert.deepEqual(oracle(client, ['-m', '42']), []);
    assert.equal(oracle(client).length, FLOWS.length - 2);
  });

  it('counts each entry once when two handles delete the same entries at once', async () => {
    const many: Flow[] = Array.from({ length: 40 }, (_, i) => ({ dst: '10.77.0.2', dport: 5356, sport: 41000 + i }));
    udpExchange(client, many);
    assert.equal(oracle(client, ['-p', 'udp', '--dport', '5356']).length, many.length + 1);
    const other = await Conntrack.open({ netns: client });
    registerCleanup(() => other.close(), 'close second conntrack handle');
    const [a, b] = await Promise.all([ct.delete({ origDstPort: 5356 }), other.delete({ origDstPort: 5356 })]);
    assert.equal(a + b, many.length + 1, `deleted ${a} + ${b}`);
    assert.deepEqual(oracle(client, ['-p', 'udp', '--dport', '5356']), []);
    assert.equal(oracle(client).length, FLOWS.length - 1);
  });

  it('flushes one family, then everything', async () => {
    await ct.flush(6);
    assert.deepEqual(oracle(client, ['-f', 'ipv6']), []);
    assert.equal(oracle(client, ['-f', 'ipv4']).length, 3, 'IPv4 entries survive an IPv6 flush');
    udpExchange(
      client,
      FLOWS.filter((f) => f.dst.includes(':')),
    );
    await ct.flush(4);
    assert.deepEqual(oracle(client, ['-f', 'ipv4']), []);
    assert.equal(oracle(client, ['-f', 'ipv6']).length, 2, 'IPv6 entries survive an IPv4 flush');
    udpExchange(
      client,
      FLOWS.filter((f) => !f.dst.includes(':')),
    );
    assert.equal(await ct.count(), FLOWS.length);
    await ct.flush();
    assert.deepEqual(oracle(client), []);
    assert.equal(await ct.count(), 0);
    assert.equal((await ct.stats()).entries, 0);
  });

  it('reports the table size as conntrack -C does', async () => {
    const stats = await ct.stats();
    assert.equal(stats.entries, Number(sh('conntrack', ['-C'], client).trim()));
    assert.equal(stats.maxEntries, Number(sh('sysctl', ['-n', 'net.netfilter.nf_conntrack_max'], client).trim()));
  });

  it('refuses bad filters with stable codes and deletes nothing', async () => {
    const bad: [unknown, string][] = [
      [{ origDstPort: 0 }, 'ERR_INVALID_ARGUMENT'],
      [{ origDstPort: 65536 }, 'ERR_INVALID_ARGUMENT'],
      [{ origSrcPort: 1.5 }, 'ERR_INVALID_ARGUMENT'],
      [{ replyDstPort: '53' }, 'ERR_INVALID_ARGUMENT'],
      [{ replySrcPort: -1 }, 'ERR_INVALID_ARGUMENT'],
      [{ origSrc: '10.77.0.300' }, 'ERR_INVALID_IP'],
      [{ origDst: 'not-an-ip' }, 'ERR_INVALID_IP'],
      [{ replySrc: '10.77.0.0/24' }, 'ERR_INVALID_IP'],
      [{ replyDst: 42 }, 'ERR_INVALID_IP'],
      [{ family: 4, origSrc: 'fd77::1' }, 'ERR_INVALID_IP'],
      [{ origSrc: '10.77.0.1', origDst: 'fd77::2' }, 'ERR_INVALID_IP'],
      [{ family: 5 }, 'ERR_INVALID_ARGUMENT'],
      [{ protocol: 'tcpx' }, 'ERR_INVALID_ARGUMENT'],
      [{ protocol: 256 }, 'ERR_INVALID_ARGUMENT'],
      [{ protocol: 'toString' }, 'ERR_INVALID_ARGUMENT'],
      [{ protocol: 'icmp', origDstPort: 53 }, 'ERR_INVALID_ARGUMENT'],
      [{ mark: -1 }, 'ERR_INVALID_ARGUMENT'],
      [{ mark: 2 ** 32 }, 'ERR_INVALID_ARGUMENT'],
      [{ zone: 65536 }, 'ERR_INVALID_ARGUMENT'],
      [{ dport: 5353 }, 'ERR_INVALID_ARGUMENT'],
      [{ __proto__: { origDstPort: 5353 }, srcport: 1 }, 'ERR_INVALID_ARGUMENT'],
      [null, 'ERR_INVALID_ARGUMENT'],
      [[5353], 'ERR_INVALID_ARGUMENT'],
      ['udp', 'ERR_INVALID_ARGUMENT'],
      [{}, 'ERR_INVALID_ARGUMENT'], // delete needs a criterion; flush() empties the table
    ];
    const before = ids(oracle(client));
    for (const [filter, code] of bad) {
      await rejectsWith(ct.delete(filter as ConntrackFilter), code);
      if (JSON.stringify(filter) !== '{}') {
        await rejectsWith(ct.list(filter as ConntrackFilter), code);
        await rejectsWith(ct.count(filter as ConntrackFilter), code);
      }
    }
    await rejectsWith(ct.flush(5 as 4), 'ERR_INVALID_ARGUMENT');
    assert.deepEqual(ids(oracle(client)), before, 'nothing was deleted');
  });

  it('opens only real network namespaces, and refuses calls once closed', async () => {
    await rejectsWith(Conntrack.open({ netns: 'nsnet-no-such-ns' }), 'ERR_NETNS_NOT_FOUND');
    await rejectsWith(Conntrack.open({ netns: '/proc/self/ns/mnt' }), 'ERR_NOT_A_NETNS');
    await rejectsWith(Conntrack.open({ namespace: client } as never), 'ERR_INVALID_ARGUMENT');
    const h = await Conntrack.open({ netns: client });
    h.close();
    assert.equal(h.isClosed, true);
    await rejectsWith(h.list(), 'ERR_HANDLE_CLOSED');
    await rejectsWith(h.delete({ origDstPort: 5353 }), 'ERR_HANDLE_CLOSED');
    await rejectsWith(h.flush(), 'ERR_HANDLE_CLOSED');
    h.close(); // twice is fine
    assert.equal(oracle(client).length, FLOWS.length);
  });
});

describe('Conntrack: a re-pointed published UDP port', function () {
  this.timeout(30000);
  useSandbox();

  // ext (10.77.10.1) -- host (10.77.10.2; 10.77.11.1; 10.77.12.1) -- c1 (10.77.11.2), c2 (10.77.12.2).
  // The host publishes UDP 5353 through a DNAT map, the way nsnet's firewall does.
  it('keeps sending a flow to the old container until its host-port entries are deleted', async () => {
    const ext = await makeNetns('cte');
    const host = await makeNetns('cth');
    const c1 = await makeNetns('ct1');
    const c2 = await makeNetns('ct2');
    ip(ext, 'link', 'add', 'e0', 'type', 'veth', 'peer', 'name', 'h0', 'netns', host);
    ip(host, 'link', 'add', 'h1', 'type', 'veth', 'peer', 'name', 'c0', 'netns', c1);
    ip(host, 'link', 'add', 'h2', 'type', 'veth', 'peer', 'name', 'c0', 'netns', c2);
    ip(ext, 'addr', 'add', '10.77.10.1/24', 'dev', 'e0');
    ip(host, 'addr', 'add', '10.77.10.2/24', 'dev', 'h0');
    ip(host, 'addr', 'add', '10.77.11.1/24', 'dev', 'h1');
    ip(host, 'addr', 'add', '10.77.12.1/24', 'dev', 'h2');
    ip(c1, 'addr', 'add', '10.77.11.2/24', 'dev', 'c0');
    ip(c2, 'addr', 'add', '10.77.12.2/24', 'dev', 'c0');
    for (const [ns, dev] of [
      [ext, 'e0'],
      [host, 'h0'],
      [host, 'h1'],
      [host, 'h2'],
      [c1, 'c0'],
      [c2, 'c0'],
    ])
      ip(ns, 'link', 'set', dev, 'up');
    ip(c1, 'route', 'add', 'default', 'via', '10.77.11.1');
    ip(c2, 'route', 'add', 'default', 'via', '10.77.12.1');
    sysctl(host, 'net.ipv4.ip_forward', '1');
    sh('nft', ['-f', '-'], host, {
      input: `table ip pub {
        map ports { type inet_service : ipv4_addr; elements = { 5353 : 10.77.11.2 }; }
        chain pre { type nat hook prerouting priority dstnat; dnat to udp dport map @ports; }
      }`,
    });
    await udpServer(c1, [5353], 'c1');
    await udpServer(c2, [5353], 'c2');
    const flow: Flow[] = [{ dst: '10.77.10.2', dport: 5353, sport: 40100 }];
    const ct = await Conntrack.open({ netns: host });
    registerCleanup(() => ct.close(), 'close conntrack handle');

    assert.deepEqual(udpExchange(ext, flow), ['c1']);
    const [entry] = await ct.list({ protocol: 'udp', origDstPort: 5353 });
    assert.ok(entry, 'the published flow is tracked on the host');
    assert.deepEqual(entry.orig, { src: '10.77.10.1', dst: '10.77.10.2', srcPort: 40100, dstPort: 5353 });
    assert.deepEqual(entry.reply, { src: '10.77.11.2', dst: '10.77.10.1', srcPort: 5353, dstPort: 40100 });
    assert.ok(entry.status.includes('dst_nat') && entry.status.includes('dst_nat_done'), entry.status.join(','));

    // Re-point the port: new flows would go to c2, but the tracked one still goes to c1.
    sh('nft', ['-f', '-'], host, { input: 'delete element ip pub ports { 5353 }\nadd element ip pub ports { 5353 : 10.77.12.2 }\n' });
    assert.deepEqual(udpExchange(ext, flow), ['c1'], 'conntrack keeps the old DNAT');

    assert.equal(await ct.delete({ protocol: 'udp', origDstPort: 5353 }), 1);
    assert.deepEqual(conntrackList(host, ['-p', 'udp', '--dport', '5353']), []);
    assert.deepEqual(udpExchange(ext, flow), ['c2'], 'after the delete the flow follows the new mapping');
    const [now] = await ct.list({ protocol: 'udp', origDstPort: 5353 });
    assert.equal(now?.reply.src, '10.77.12.2');
  });
});
