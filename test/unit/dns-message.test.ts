/**
 * DNS messages: what each kind of datagram becomes (query, dropped, FORMERR, NOTIMP, BADVERS),
 * replies cut to the client's UDP size, upstream replies matched to their question, the TCP
 * framing, user input for names and upstreams, and resolv.conf parsing.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as dnsPacket from 'dns-packet';
import { dnsConfig, type DnsNetworkRecord } from '../../lib/dns/config';
import { RCODE, answers, fitUdp, parseQuery, reply, udpLimit, type Query } from '../../lib/dns/message';
import { checkEndpointNames, checkNetworkDns, dnsKey, parseUpstream } from '../../lib/dns/names';
import { ResolvConfFile, parseResolvConf } from '../../lib/dns/resolvconf';
import { FrameReader, frame } from '../../lib/dns/tcp';

const CORPUS = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'dns-corpus');
const seed = (name: string): Buffer => fs.readFileSync(path.join(CORPUS, name));

function outcome(buf: Buffer): string {
  const p = parseQuery(buf);
  if (p.kind !== 'error') return p.kind;
  const r = dnsPacket.decode(p.response) as dnsPacket.DecodedPacket & { rcode: string };
  const opt = (r.additionals ?? []).find((a) => a.type === 'OPT') as dnsPacket.OptAnswer | undefined;
  return opt?.extendedRcode ? 'BADVERS' : r.rcode;
}

describe('dns: parsing queries', () => {
  it('sorts every kind of datagram of the corpus', () => {
    const expect: Record<string, string> = {
      'a-web.bin': 'query',
      'aaaa-edns.bin': 'query',
      'ptr-v4.bin': 'query',
      'ptr-v6.bin': 'query',
      'any-web.bin': 'query',
      'mx-web.bin': 'query',
      'txt-outside.bin': 'query',
      'nxdomain-bare.bin': 'query',
      'chaos-version.bin': 'query',
      'dot-in-label.bin': 'query',
      'utf8-invalid.bin': 'query',
      'two-questions.bin': 'FORMERR',
      'two-opts.bin': 'FORMERR',
      'answer-in-query.bin': 'FORMERR',
      'header-only.bin': 'FORMERR',
      'pointer-self.bin': 'FORMERR',
      'pointer-forward.bin': 'FORMERR',
      'label-overflow.bin': 'FORMERR',
      'qdcount-max.bin': 'FORMERR',
      'bad-label-type.bin': 'FORMERR',
      'question-cut.bin': 'FORMERR',
      'name-too-long.bin': 'FORMERR',
      'opcode-notify.bin': 'NOTIMP',
      'edns-v1.bin': 'BADVERS',
      'response.bin': 'drop',
    };
    for (const [file, want] of Object.entries(expect)) assert.equal(outcome(seed(file)), want, file);
    assert.equal(outcome(Buffer.alloc(11)), 'drop', 'shorter than a header');
  });

  it("an error reply carries the query's id; a name that does not re-encode exactly is never answered as ours", () => {
    const p = parseQuery(seed('pointer-self.bin'));
    assert.equal(p.kind, 'error');
    assert.equal(dnsPacket.decode((p as { response: Buffer }).response).id, 0x1234);
    for (const f of ['dot-in-label.bin', 'utf8-invalid.bin']) assert.equal((parseQuery(seed(f)) as { query: Query }).query.exact, false, f);
    assert.equal((parseQuery(seed('a-web.bin')) as { query: Query }).query.exact, true);
  });

  it('the UDP limit: 512 without EDNS, the advertised size (512..4096) with', () => {
    const mk = (size?: number): Query =>
      (
        parseQuery(
          dnsPacket.encode({
            type: 'query',
            id: 1,
            questions: [{ type: 'A', name: 'x' }],
            additionals:
              size === undefined
                ? []
                : [{ type: 'OPT', name: '.', udpPayloadSize: size, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [] } as unknown as dnsPacket.Answer],
          }),
        ) as { query: Query }
      ).query;
    assert.equal(udpLimit(mk()), 512);
    assert.equal(udpLimit(mk(100)), 512);
    assert.equal(udpLimit(mk(1232)), 1232);
    assert.equal(udpLimit(mk(65000)), 4096);
  });
});

describe('dns: replies', () => {
  const query = (parseQuery(seed('aaaa-edns.bin')) as { query: Query }).query;

  it('echo the question and answer with an OPT record to an EDNS client', () => {
    const r = dnsPacket.decode(reply(query, { rcode: RCODE.NXDOMAIN, aa: true }));
    assert.equal(r.id, 0x1234);
    assert.equal(r.type, 'response');
    assert.deepEqual(r.questions, [{ name: 'web', type: 'AAAA', class: 'IN' }]);
    assert.equal((r.additionals ?? [])[0]?.type, 'OPT');
  });

  it('fitUdp() keeps an upstream reply that fits, cuts one that does not to whole records with TC', () => {
    const answersList = Array.from({ length: 30 }, (_, i) => ({ type: 'TXT' as const, name: 'web', ttl: 9, data: `${i}`.padEnd(80, 'y') }));
    const full = dnsPacket.encode({
      type: 'response',
      id: 99,
      flags: dnsPacket.RECURSION_AVAILABLE,
      questions: [{ type: 'TXT', name: 'web' }],
      answers: answersList,
    });
    const small = Buffer.from(full.subarray(0, 12));
    assert.equal(fitUdp(small, query, 512), small);
    const cut = fitUdp(full, query, 512);
    assert.ok(cut.length <= 512);
    const d = dnsPacket.decode(cut);
    assert.equal(d.flag_tc, true);
    assert.equal(d.id, query.id);
    assert.ok((d.answers ?? []).length >= 4);
    const junk = Buffer.concat([full.subarray(0, 40), Buffer.alloc(600, 0xc0)]);
    const fallback = dnsPacket.decode(fitUdp(junk, query, 512));
    assert.equal(fallback.flag_tc, true, 'an upstream reply the codec cannot take apart: TC and the question');
  });

  it('answers() matches an upstream reply to its question, case aside, and nothing else', () => {
    const q = query.question;
    const good = dnsPacket.encode({ type: 'response', id: 5, questions: [{ type: 'AAAA', name: 'WEB' }] });
    assert.equal(answers(good, q), true);
    assert.equal(answers(dnsPacket.encode({ type: 'response', id: 5, questions: [{ type: 'A', name: 'web' }] }), q), false);
    assert.equal(answers(dnsPacket.encode({ type: 'query', id: 5, questions: [{ type: 'AAAA', name: 'web' }] }), q), false, 'not a response');
    assert.equal(answers(Buffer.from([0, 5, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0]), q), false);
  });

  it('TCP framing: messages split anywhere and joined come out whole', () => {
    const msgs = [Buffer.from('one'), Buffer.alloc(0), Buffer.alloc(70000 % 65536, 7), Buffer.from('last')];
    const stream = Buffer.concat(msgs.map(frame));
    for (const step of [1, 2, 3, 7, 1000, stream.length]) {
      const r = new FrameReader();
      const out: Buffer[] = [];
      for (let i = 0; i < stream.length; i += step) out.push(...r.push(stream.subarray(i, i + step)));
      assert.deepEqual(
        out.map((b) => b.toString('hex')),
        msgs.map((b) => b.toString('hex')),
        `chunks of ${step}`,
      );
      assert.equal(r.pending, 0);
    }
  });
});

describe('dns: user input', () => {
  it('endpoint names and aliases must be DNS names', () => {
    assert.deepEqual(checkEndpointNames({ name: 'web_1', aliases: ['a', 'b.c', 'a'] }), { name: 'web_1', aliases: ['a', 'b.c'] });
    for (const bad of ['', 'has space', '-lead', 'trail-', 'x'.repeat(64), 'a..b', 'dot.', 'é']) {
      assert.throws(() => checkEndpointNames({ name: bad }), { code: 'ERR_INVALID_NAME' }, JSON.stringify(bad));
      assert.throws(() => checkEndpointNames({ aliases: [bad] }), { code: 'ERR_INVALID_NAME' });
    }
    assert.throws(() => checkEndpointNames({ aliases: 'x' as unknown as string[] }), { code: 'ERR_INVALID_ARGUMENT' });
    assert.equal(dnsKey('Web.Example.'), 'web.example');
    assert.equal(dnsKey('a'.repeat(254)), undefined);
  });

  it('upstreams: addresses with optional ports; the network option', () => {
    assert.deepEqual(parseUpstream('192.0.2.1'), { address: '192.0.2.1', port: 53, family: 4 });
    assert.deepEqual(parseUpstream('192.0.2.1:5353'), { address: '192.0.2.1', port: 5353, family: 4 });
    assert.deepEqual(parseUpstream('2001:DB8::1'), { address: '2001:db8::1', port: 53, family: 6 });
    assert.deepEqual(parseUpstream('[2001:db8::1]:853'), { address: '2001:db8::1', port: 853, family: 6 });
    assert.deepEqual(parseUpstream('::ffff:192.0.2.1'), { address: '192.0.2.1', port: 53, family: 4 });
    for (const bad of ['dns.google', '192.0.2.1:0', '192.0.2.1:70000', 'fe80::1', '[::1', '1.2.3', 7, ''])
      assert.throws(() => parseUpstream(bad), { code: 'ERR_INVALID_IP' }, String(bad));
    assert.equal(checkNetworkDns(undefined), undefined);
    assert.equal(checkNetworkDns(false), false);
    assert.deepEqual(checkNetworkDns(true), {});
    assert.deepEqual(checkNetworkDns({ upstream: ['192.0.2.1'] }), { upstream: ['192.0.2.1'] });
    assert.throws(() => checkNetworkDns({ upstream: ['nope'] }), { code: 'ERR_INVALID_IP' });
    assert.throws(() => checkNetworkDns({ servers: [] }), { code: 'ERR_INVALID_ARGUMENT' });
    assert.throws(() => checkNetworkDns('yes'), { code: 'ERR_INVALID_ARGUMENT' });
  });
});

describe('dns: resolv.conf', () => {
  it('parses as glibc: first three nameservers, last search line, 127.0.0.1 when none', () => {
    const c = parseResolvConf(
      '# comment\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\nnameserver 2001:db8::53 ; trailing\nnameserver 10.0.0.1\nnameserver 10.0.0.2\nsearch a.example b.example\ndomain c.example\noptions edns0 trust-ad\n',
    );
    assert.deepEqual(
      c.nameservers.map((n) => n.address),
      ['127.0.0.53', '2001:db8::53', '10.0.0.1'],
    );
    assert.deepEqual(c.search, ['c.example']);
    assert.deepEqual(c.options, ['edns0', 'trust-ad']);
    assert.deepEqual(parseResolvConf('').nameservers, [{ address: '127.0.0.1', port: 53, family: 4 }]);
  });

  it('is re-read when the file is replaced', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-resolv-'));
    try {
      const file = path.join(dir, 'resolv.conf');
      fs.writeFileSync(file, 'nameserver 10.0.0.1\n');
      const r = new ResolvConfFile(file);
      assert.equal(r.current().nameservers[0]!.address, '10.0.0.1');
      fs.writeFileSync(`${file}.tmp`, 'nameserver 10.0.0.2\nsearch corp\n');
      fs.renameSync(`${file}.tmp`, file);
      r.invalidate();
      assert.equal(r.current().nameservers[0]!.address, '10.0.0.2');
      fs.rmSync(file);
      r.invalidate();
      assert.equal(r.current().nameservers[0]!.address, '127.0.0.1', 'gone: the defaults');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("dnsConfig(): the gateways the endpoint can reach, the host's search domains, ndots:0; nothing without DNS", () => {
    const net = {
      driver: 'bridge',
      name: 'app',
      subnet: '172.20.0.0/16',
      gateway: '172.20.0.1',
      subnet6: 'fd00::/64',
      gateway6: 'fd00::1',
      internal: false,
    } as unknown as DnsNetworkRecord;
    const resolv = parseResolvConf('nameserver 10.0.0.1\nsearch corp.example\n');
    assert.deepEqual(dnsConfig(net, { ipv4: '172.20.0.2', ipv6: 'fd00::2' }, resolv), {
      nameservers: ['172.20.0.1', 'fd00::1'],
      search: ['corp.example'],
      options: ['ndots:0'],
    });
    assert.deepEqual(dnsConfig(net, { ipv4: '172.20.0.2' }, resolv)?.nameservers, ['172.20.0.1']);
    assert.equal(dnsConfig({ ...net, dns: false } as DnsNetworkRecord, { ipv4: '172.20.0.2' }, resolv), undefined);
    assert.equal(dnsConfig({ ...net, name: 'bridge' } as DnsNetworkRecord, { ipv4: '172.20.0.2' }, resolv), undefined);
  });
});
