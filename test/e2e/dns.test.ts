/**
 * The embedded DNS resolver end to end: the resolver runs in the test's "host" namespace, the
 * queries come from container namespaces (c-ares, or raw bytes), and the upstream it forwards to
 * is a server in the "external" namespace.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as dnsPacket from 'dns-packet';
import { runDns, type DnsResolver } from '../../lib/index';
import { readResolvConf } from '../../lib/dns/resolvconf';
import { FileStore } from '../../lib/store/filestore';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';
import { makeWorld, type World } from '../helpers/world';
import { ipJson, sh } from '../helpers/oracle';
import { DnsClient, DnsUpstream, until } from '../helpers/dns';

const GW = '172.30.0.1';
const GW6 = 'fd30::1';
const UPSTREAM = '10.99.0.2';

function query(name: string, type: dnsPacket.RecordType, o: { id?: number; edns?: boolean } = {}): Buffer {
  const additionals = o.edns
    ? [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [] } as unknown as dnsPacket.Answer]
    : [];
  return dnsPacket.encode({ type: 'query', id: o.id ?? 4242, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }], additionals });
}

function tcpFrame(b: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

describe('embedded DNS (resolver in the host namespace, queries from containers)', function () {
  this.timeout(60000);
  useSandbox();

  let w: World;
  let resolvConf: string;
  let dns: DnsResolver;
  let upstream: DnsUpstream;

  beforeEach(async () => {
    w = await makeWorld({ prefix: 'dn', hostIp: '10.99.0.1', extIp: UPSTREAM });
    resolvConf = path.join(w.stateDir, 'resolv.conf');
    fs.writeFileSync(resolvConf, `nameserver ${UPSTREAM}\nsearch corp.test\n`);
    upstream = await DnsUpstream.start(w.ext, UPSTREAM, { 'example.test': { A: ['203.0.113.7'] }, 'big.test': { TXT: 20 } });
    await w.host.createNetwork({ name: 'app', subnet: '172.30.0.0/16', subnet6: 'fd30::/64' });
    // The bridge keeps its MAC when a port leaves (lib/devices/bridge.ts sets it): a disconnect
    // does not take the other containers' gateway (and resolver) away.
    const bridge = ((await w.host.listNetworks()).find((n) => n.name === 'app') as { bridge: string }).bridge;
    assert.equal(ipJson(['link', 'show', bridge], w.h)[0].address, '02:42:ac:1e:00:01', 'the bridge MAC is derived from the gateway');
    dns = await runDns({ stateDir: w.stateDir, netns: w.h, resolvConf, upstreamTimeout: 1000 });
    registerCleanup(() => dns.close());
  });

  it('a container resolves another by id (A, AAAA, PTR) over IPv4 and IPv6; unknown names get NXDOMAIN; another network sees none of them', async () => {
    const c1 = await makeNetns('dc1');
    const c2 = await makeNetns('dc2');
    const e1 = await w.host.connect('app', { id: 'web', netns: c1 });
    await w.host.connect('app', { id: 'db', netns: c2 });
    const ip4 = e1.ipv4!.split('/')[0]!;
    const ip6 = e1.ipv6!.split('/')[0]!;
    const q = await DnsClient.start(c2);
    assert.deepEqual(await q.resolve(GW, 'web'), { ok: true, result: [ip4] });
    assert.deepEqual(await q.resolve(GW, 'WEB.'), { ok: true, result: [ip4] }, 'names are case-insensitive');
    assert.deepEqual(await q.resolve(GW, 'web', 'AAAA'), { ok: true, result: [ip6] });
    assert.deepEqual(await q.resolve(GW6, 'web'), { ok: true, result: [ip4] }, 'the resolver answers on the IPv6 gateway too');
    assert.deepEqual(await q.reverse(GW, ip4), { ok: true, result: ['web'] });
    assert.deepEqual(await q.reverse(GW, ip6), { ok: true, result: ['web'] });
    assert.deepEqual(await q.resolve(GW, 'nothere'), { ok: false, code: 'ENOTFOUND' }, 'NXDOMAIN for a bare name that is not there');
    assert.equal(upstream.seen.length, 0, 'none of it went upstream');
    assert.deepEqual(
      dns
        .listeners()
        .map((l) => l.address)
        .sort(),
      [GW, GW6],
    );

    await w.host.createNetwork({ name: 'other', subnet: '172.31.0.0/16' });
    await dns.sync();
    const c3 = await makeNetns('dc3');
    await w.host.connect('other', { id: 'lone', netns: c3 });
    const q3 = await DnsClient.start(c3);
    assert.deepEqual(await q3.resolve('172.31.0.1', 'web'), { ok: false, code: 'ENOTFOUND' }, 'web is not a name of network other');
    assert.deepEqual(await q3.resolve('172.31.0.1', 'lone'), { ok: true, result: ['172.31.0.2'] });
    const cross = await q3.resolve(GW, 'web', 'A', 1000);
    assert.equal(cross.ok, false, "asking app's gateway from another network gets nothing");
    assert.deepEqual(await q.reverse(GW, '172.31.0.2'), { ok: false, code: 'ENOTFOUND' }, "no PTR for another network's address");
  });

  it('a name resolves as soon as connect() returns — from another process too — and stops as soon as disconnect() returns', async () => {
    const c1 = await makeNetns('dc1');
    const c2 = await makeNetns('dc2');
    await w.host.connect('app', { id: 'client', netns: c1 });
    const q = await DnsClient.start(c1);
    assert.deepEqual(await q.resolve(GW, 'late'), { ok: false, code: 'ENOTFOUND' });
    // Another process (its own NetworkHost over the same state) connects; we ask right after it returns.
    const script = `const { NetworkHost } = require(${JSON.stringify(path.resolve(__dirname, '../../lib/index.js'))});
      NetworkHost.open({ stateDir: ${JSON.stringify(w.stateDir)}, netns: ${JSON.stringify(w.h)} })
        .then((h) => h.connect('app', { id: 'late', netns: ${JSON.stringify(c2)} }).then((e) => { console.log(e.ipv4); return h.close(); }))
        .catch((e) => { console.error(e); process.exit(1); });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out = await new Promise<string>((resolve) => {
      let s = '';
      child.stdout.on('data', (d) => (s += d));
      child.on('exit', () => resolve(s.trim()));
    });
    assert.match(out, /^172\.30\.0\.\d+\/16$/u);
    assert.deepEqual(await q.resolve(GW, 'late'), { ok: true, result: [out.split('/')[0]] }, 'the first query after connect() returned resolves');
    await w.host.disconnect('app', 'late');
    assert.deepEqual(await q.resolve(GW, 'late'), { ok: false, code: 'ENOTFOUND' }, 'the first query after disconnect() returned does not');
    for (let i = 0; i < 5; i++) {
      await w.host.connect('app', { id: `n${i}`, netns: await makeNetns(`dn${i}`) });
      assert.equal((await q.resolve(GW, `n${i}`)).ok, true, `n${i} right after its connect`);
    }
  });

  it('repeats are answered by the listening socket itself, never once the store has changed: a name flips at the first query after connect() or disconnect() returns', async () => {
    const c1 = await makeNetns('dc1');
    const c2 = await makeNetns('dc2');
    await w.host.connect('app', { id: 'client', netns: c1 });
    const q = await DnsClient.start(c1);
    const rcode = async (name: string, id: number): Promise<{ rcode: string; answers: number }> => {
      const r = await q.raw(GW, query(name, 'A', { id }));
      assert.ok(r, `an answer for ${name}`);
      const m = dnsPacket.decode(r);
      assert.equal(m.id, id, 'the request id');
      return { rcode: ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN'][r[3]! & 0xf] ?? String(r[3]! & 0xf), answers: (m.answers ?? []).length };
    };
    const before = dns.stats;
    for (let i = 0; i < 15; i++) {
      // Asked three times: the first is answered by the resolver, which lets the socket answer the repeats.
      for (let k = 0; k < 3; k++) assert.deepEqual(await rcode('flip', i * 10 + k), { rcode: 'NXDOMAIN', answers: 0 }, `round ${i}: not there yet`);
      await w.host.connect('app', { id: 'flip', netns: c2 });
      for (let k = 3; k < 6; k++) assert.deepEqual(await rcode('flip', i * 10 + k), { rcode: 'NOERROR', answers: 1 }, `round ${i}: right after connect()`);
      await w.host.disconnect('app', 'flip');
      assert.deepEqual(await rcode('flip', i * 10 + 6), { rcode: 'NXDOMAIN', answers: 0 }, `round ${i}: right after disconnect()`);
    }
    const after = dns.stats;
    assert.equal(after.queries - before.queries, 15 * 7, 'every query counted');
    // Each round the socket may answer the 2 NXDOMAIN and 2 NOERROR repeats, and (after the
    // first round) the first query too: the same as the last one of the round before, after the
    // store last changed. Fewer when a read-ahead of the store lands between two queries.
    const remembered = after.remembered - before.remembered;
    assert.ok(remembered >= 15 * 2 && remembered <= 15 * 4 + 14, `answered by the socket: ${remembered}`);
    assert.equal(after.nxdomain - before.nxdomain, 15 * 4);
    assert.equal(after.local - before.local, 15 * 3);
  });

  it('forwards other names upstream over UDP; a truncated answer is fetched again over TCP and cut to the client; TCP clients are forwarded over TCP', async () => {
    const c1 = await makeNetns('dc1');
    await w.host.connect('app', { id: 'web', netns: c1 });
    const q = await DnsClient.start(c1);
    assert.deepEqual(await q.resolve(GW, 'example.test'), { ok: true, result: ['203.0.113.7'] });
    assert.deepEqual(await q.resolve(GW, 'missing.test'), { ok: false, code: 'ENOTFOUND' }, "the upstream's NXDOMAIN comes through");
    assert.ok(upstream.seen.some((s) => s.name === 'example.test' && s.transport === 'udp'));

    // No EDNS: 512 bytes over UDP. 20 TXT records of 100 bytes do not fit.
    const udp = await q.raw(GW, query('big.test', 'TXT', { id: 77 }));
    assert.ok(udp, 'an answer over UDP');
    const cut = dnsPacket.decode(udp);
    assert.equal(cut.id, 77);
    assert.equal(cut.flag_tc, true, 'TC set');
    assert.ok(udp.length <= 512, `fits 512 bytes (${udp.length})`);
    assert.ok((cut.answers ?? []).length >= 3, `the records that fit are there for clients that cannot retry (${(cut.answers ?? []).length})`);
    assert.ok(
      upstream.seen.some((s) => s.name === 'big.test' && s.transport === 'tcp'),
      'the resolver asked again over TCP',
    );

    const tcp = await q.raw(GW, tcpFrame(query('big.test', 'TXT', { id: 78 })), { tcp: true });
    assert.ok(tcp);
    const full = dnsPacket.decode(tcp.subarray(2));
    assert.equal(full.id, 78);
    assert.equal(full.flag_tc, false);
    assert.equal((full.answers ?? []).length, 20, 'the whole answer over TCP');
    // A name of the network over TCP, and two pipelined queries on one connection.
    const two = await q.raw(GW, Buffer.concat([tcpFrame(query('web', 'A', { id: 1 })), tcpFrame(query('example.test', 'A', { id: 2 }))]), {
      tcp: true,
      wait: 1500,
    });
    assert.ok(two);
  });

  it('an internal network never forwards; its names still resolve', async () => {
    await w.host.createNetwork({ name: 'sealed', subnet: '172.29.0.0/16', internal: true });
    await dns.sync();
    const c1 = await makeNetns('dc1');
    const c2 = await makeNetns('dc2');
    const e1 = await w.host.connect('sealed', { id: 'vault', netns: c1 });
    await w.host.connect('sealed', { id: 'app1', netns: c2 });
    const q = await DnsClient.start(c2);
    assert.deepEqual(await q.resolve('172.29.0.1', 'vault'), { ok: true, result: [e1.ipv4!.split('/')[0]] });
    assert.deepEqual(await q.resolve('172.29.0.1', 'example.test'), { ok: false, code: 'EREFUSED' });
    assert.equal(upstream.seen.length, 0);
  });

  it("reads name and aliases from endpoint records and a network's own upstreams (the fields connect() and createNetwork() will write)", async () => {
    const c1 = await makeNetns('dc1');
    const c2 = await makeNetns('dc2');
    const e1 = await w.host.connect('app', { id: 'c0ffee', netns: c1 });
    await w.host.connect('app', { id: 'peer', netns: c2 });
    const other = await DnsUpstream.start(w.ext, '10.99.0.2', { 'example.test': { A: ['198.51.100.9'] } }, 5353);
    const store = await FileStore.open({ dir: w.stateDir });
    await store.update((tx) => {
      const ep = tx.get<Record<string, unknown>>('endpoints', 'app/c0ffee')!;
      tx.put('endpoints', 'app/c0ffee', { ...ep, name: 'frontend', aliases: ['www', 'shop.internal'] });
      const net = tx.get<Record<string, unknown>>('networks', 'app')!;
      tx.put('networks', 'app', { ...net, dns: { upstream: ['10.99.0.2:5353'] } });
    });
    await store.close();
    const q = await DnsClient.start(c2);
    const ip = e1.ipv4!.split('/')[0];
    for (const n of ['c0ffee', 'frontend', 'www', 'shop.internal']) assert.deepEqual(await q.resolve(GW, n), { ok: true, result: [ip] }, n);
    assert.deepEqual(await q.reverse(GW, ip!), { ok: true, result: ['frontend'] }, "PTR names the endpoint's name");
    assert.deepEqual(await q.resolve(GW, 'example.test'), { ok: true, result: ['198.51.100.9'] }, "the network's own upstream");
    assert.equal(other.seen.length, 1);
    assert.equal(upstream.seen.length, 0, "not the host's");
  });

  it('through NetworkHost: host.runDns(), connect({ name, aliases }) returns the resolv.conf settings; createNetwork({ dns }) sets upstreams or turns it off', async () => {
    await dns.close();
    const own = await w.host.runDns({ resolvConf, upstreamTimeout: 1000 });
    const c1 = await makeNetns('dh1');
    const c2 = await makeNetns('dh2');
    const e1 = await w.host.connect('app', { id: 'c0ffee', netns: c1, name: 'frontend', aliases: ['www', 'shop.internal'] });
    assert.deepEqual(
      e1.dns,
      { nameservers: [GW, GW6], search: readResolvConf().search, options: ['ndots:0'] },
      "what the runtime writes into resolv.conf: the gateways, the host's search domains",
    );
    assert.equal(e1.name, 'frontend');
    assert.deepEqual(e1.aliases, ['www', 'shop.internal']);
    await w.host.connect('app', { id: 'peer', netns: c2 });
    const q = await DnsClient.start(c2);
    const ip = e1.ipv4!.split('/')[0];
    for (const n of ['c0ffee', 'frontend', 'www', 'shop.internal']) assert.deepEqual(await q.resolve(GW, n), { ok: true, result: [ip] }, n);
    // The same connect again is the same endpoint; other names are other settings.
    assert.equal((await w.host.connect('app', { id: 'c0ffee', netns: c1, name: 'frontend', aliases: ['www', 'shop.internal'] })).ipv4, e1.ipv4);
    await assert.rejects(w.host.connect('app', { id: 'c0ffee', netns: c1, name: 'backend' }), { code: 'ERR_ENDPOINT_EXISTS' });
    await assert.rejects(w.host.connect('app', { id: 'bad', netns: c2, name: 'not a name' }), { code: 'ERR_INVALID_NAME' });
    // A network of the same process gets its listener at once; `dns: false` none; upstreams of its own.
    await w.host.createNetwork({ name: 'quiet', subnet: '172.28.0.0/16', dns: false });
    await w.host.createNetwork({ name: 'own', subnet: '172.27.0.0/16', dns: { upstream: ['10.99.0.2:5353'] } });
    assert.deepEqual(
      own
        .listeners()
        .map((l) => l.network)
        .sort(),
      ['app', 'app', 'own'],
    );
    const c3 = await makeNetns('dh3');
    assert.equal((await w.host.connect('quiet', { id: 'q', netns: c3 })).dns, undefined, 'no resolv.conf settings where there is no DNS');
    await assert.rejects(w.host.createNetwork({ name: 'bad', subnet: '172.26.0.0/16', dns: { upstream: ['not an address'] } }), { code: 'ERR_INVALID_IP' });
    await assert.rejects(
      w.host.createNetwork({ name: 'bad', driver: 'macvlan', parent: 'up0', subnet: '172.26.0.0/16', dns: false }),
      /dns does not apply to a macvlan network/u,
    );
    await w.host.removeNetwork('own');
    assert.deepEqual(
      own
        .listeners()
        .map((l) => l.network)
        .sort(),
      ['app', 'app'],
      'a removed network stops being served at once',
    );
  });

  it('re-reads the host resolv.conf when it changes', async () => {
    sh('ip', ['-n', w.ext, 'addr', 'add', '10.99.0.3/24', 'dev', 'eth0']);
    await DnsUpstream.start(w.ext, '10.99.0.3', { 'example.test': { A: ['192.0.2.33'] } });
    const c1 = await makeNetns('dc1');
    await w.host.connect('app', { id: 'web', netns: c1 });
    const q = await DnsClient.start(c1);
    assert.deepEqual(await q.resolve(GW, 'example.test'), { ok: true, result: ['203.0.113.7'] });
    fs.writeFileSync(`${resolvConf}.new`, 'nameserver 10.99.0.3\n');
    fs.renameSync(`${resolvConf}.new`, resolvConf);
    assert.ok(
      await until(async () => JSON.stringify(await q.resolve(GW, 'example.test')) === JSON.stringify({ ok: true, result: ['192.0.2.33'] })),
      'the new upstream answers',
    );
  });

  it('garbage datagrams and streams are dropped or answered FORMERR, never stall it; it keeps answering', async () => {
    const c1 = await makeNetns('dc1');
    await w.host.connect('app', { id: 'web', netns: c1 });
    const q = await DnsClient.start(c1);
    const corpus = path.resolve(__dirname, '../../../test/fixtures/dns-corpus');
    const inputs = fs.readdirSync(corpus).map((f) => fs.readFileSync(path.join(corpus, f)));
    inputs.push(Buffer.alloc(0), Buffer.from([1]), Buffer.alloc(11), Buffer.alloc(600, 0xff));
    const before = dns.stats;
    for (const b of inputs) {
      const r = await q.raw(GW, b, { wait: 300 });
      if (r) {
        const p = dnsPacket.decode(r);
        assert.equal(p.type, 'response');
        if (b.length >= 2) assert.equal(p.id, b.readUInt16BE(0), 'a reply carries the id it answers');
      }
    }
    // Garbage over TCP: a bad length, a half message left hanging, a frame of junk.
    await q.raw(GW, Buffer.from([0xff, 0xff, 1, 2, 3]), { tcp: true, wait: 200 });
    await q.raw(GW, tcpFrame(Buffer.alloc(40, 0x41)), { tcp: true, wait: 300 });
    // A response sent to the resolver gets nothing back (no reflection, no loop).
    const response = dnsPacket.encode({ type: 'response', id: 9, questions: [{ type: 'A', name: 'web' }], answers: [] });
    assert.equal(await q.raw(GW, response, { wait: 300 }), null);
    const after = dns.stats;
    assert.ok(after.dropped > before.dropped && after.formerr > before.formerr, JSON.stringify(after));
    assert.deepEqual(await q.resolve(GW, 'web'), { ok: true, result: ['172.30.0.2'] }, 'still answering');
  });

  it('restarts: a new resolver takes over the addresses and answers at once', async () => {
    const c1 = await makeNetns('dc1');
    await w.host.connect('app', { id: 'web', netns: c1 });
    const q = await DnsClient.start(c1);
    assert.equal((await q.resolve(GW, 'web')).ok, true);
    assert.ok(await q.raw(GW, tcpFrame(query('web', 'A')), { tcp: true }), 'TCP before');
    await dns.close();
    assert.equal((await q.resolve(GW, 'web', 'A', 500)).ok, false, 'nothing answers while it is down');
    dns = await runDns({ stateDir: w.stateDir, netns: w.h, resolvConf });
    assert.deepEqual(dns.problems(), []);
    assert.deepEqual(await q.resolve(GW, 'web'), { ok: true, result: ['172.30.0.2'] });
    assert.ok(await q.raw(GW, tcpFrame(query('web', 'A')), { tcp: true }), 'TCP after');
  });

  it('serves no DNS on the predefined bridge network', async () => {
    const c = await makeNetns('dc1');
    await w.host.connect('bridge', { id: 'old', netns: c });
    await dns.sync();
    assert.equal(
      dns.listeners().some((l) => l.address === '172.17.0.1'),
      false,
    );
    assert.deepEqual(
      dns.listeners().map((l) => l.network),
      ['app', 'app'],
    );
  });

  it('opens no resolver for a namespace that does not exist (ERR_NETNS_NOT_FOUND)', async () => {
    await assert.rejects(runDns({ stateDir: w.stateDir, netns: 'no-such-ns' }), { code: 'ERR_NETNS_NOT_FOUND' });
  });
});
