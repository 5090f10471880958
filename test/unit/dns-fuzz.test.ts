/**
 * Fuzzing the resolver's packet handling in process: every corpus file, then mutants of them
 * (test/helpers/dns-fuzz.ts), through parsing, the answer for a served network and the cut to
 * the client's UDP size — and the TCP framing with random chunking. Whatever the bytes: no
 * exception, and every reply decodes, is a response and carries the query's id. The server
 * over real sockets gets the same inputs in test/e2e/dns-fuzz.test.ts.
 *
 * Budget: NSNET_DNS_FUZZ_ITERATIONS (default 10 000); seed NSNET_DNS_FUZZ_SEED (default 1).
 */
import * as assert from 'node:assert/strict';
import * as dnsPacket from 'dns-packet';
import { decide } from '../../lib/dns/answer';
import type { DnsNetworkRecord } from '../../lib/dns/config';
import { fitUdp, parseQuery, udpLimit } from '../../lib/dns/message';
import { RecordIndex, type DnsEndpointRecord } from '../../lib/dns/records';
import { FrameReader, frame } from '../../lib/dns/tcp';
import { corpus, keepCrash, mutate, prng } from '../helpers/dns-fuzz';

const ITERATIONS = Number(process.env.NSNET_DNS_FUZZ_ITERATIONS ?? 10000);
const SEED = Number(process.env.NSNET_DNS_FUZZ_SEED ?? 1);

const net = {
  driver: 'bridge',
  name: 'app',
  bridge: 'b',
  subnet: '172.30.0.0/16',
  gateway: '172.30.0.1',
  subnet6: 'fd30::/64',
  gateway6: 'fd30::1',
  mtu: 1500,
  internal: false,
  icc: true,
  ipMasquerade: true,
  labels: {},
  created: '',
} as DnsNetworkRecord;
const eps: DnsEndpointRecord[] = Array.from({ length: 40 }, (_, i) => ({
  id: `c${i}`,
  network: 'app',
  ipv4: `172.30.0.${i + 2}`,
  ipv6: `fd30::${i + 2}`,
  aliases: ['web', 'pool'],
  ports: [],
  created: '',
}));
const zone = RecordIndex.build([net], eps).zone('app')!;

/** Runs one input through everything a datagram meets; throws with the reason on a violation. */
function handle(input: Buffer): void {
  const p = parseQuery(input);
  const replies: Buffer[] = [];
  if (p.kind === 'error') replies.push(p.response);
  if (p.kind === 'query') {
    for (const transport of ['udp', 'tcp'] as const) {
      const d = decide(p.query, zone, { src: transport === 'udp' ? '172.30.0.9' : '10.1.1.1', transport });
      if (d.kind === 'reply') {
        replies.push(d.response);
        if (transport === 'udp' && d.response.length > udpLimit(p.query))
          throw new Error(`UDP reply of ${d.response.length} bytes over the client's ${udpLimit(p.query)}`);
      }
    }
    // An "upstream reply" made of the mutant itself, cut for the client: must not throw either.
    replies.push(fitUdp(input, p.query, udpLimit(p.query)));
  }
  for (const r of replies) {
    if (p.kind === 'query' && r === input) continue;
    const d = dnsPacket.decode(r);
    if (d.type !== 'response') throw new Error('a reply that is not a response');
    if (input.length >= 2 && d.id !== input.readUInt16BE(0)) throw new Error('a reply with another id');
  }
}

describe('dns: fuzzing the packet handling', function () {
  this.timeout(300000);
  const seeds = corpus();

  it(`handles every corpus file (${seeds.length}) and ${ITERATIONS} mutants without an exception`, () => {
    assert.ok(seeds.length >= 20, 'the corpus is there');
    for (const s of seeds) {
      try {
        handle(s.bytes);
      } catch (e) {
        assert.fail(`corpus ${s.name}: ${(e as Error).message}`);
      }
    }
    const rnd = prng(SEED);
    const bufs = seeds.map((s) => s.bytes);
    const kinds = new Map<string, number>();
    for (let i = 0; i < ITERATIONS; i++) {
      const input = mutate(bufs, rnd);
      try {
        handle(input);
      } catch (e) {
        assert.fail(`mutant ${i} (seed ${SEED}) kept as ${keepCrash(input)}: ${(e as Error).stack}`);
      }
      const k = parseQuery(input).kind;
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    // The mutants reached every branch, or the loop proves little.
    for (const k of ['query', 'error', 'drop']) assert.ok((kinds.get(k) ?? 0) > ITERATIONS / 50, `${k}: ${kinds.get(k)} of ${ITERATIONS}`);
  });

  it('TCP framing: random streams in random chunks never throw, and whole frames survive any chunking', () => {
    const rnd = prng(SEED + 1);
    for (let i = 0; i < 500; i++) {
      const msgs = Array.from({ length: 1 + Math.floor(rnd() * 5) }, () =>
        Buffer.from(Array.from({ length: Math.floor(rnd() * 300) }, () => Math.floor(rnd() * 256))),
      );
      const stream = Buffer.concat([...msgs.map(frame), Buffer.from(Array.from({ length: Math.floor(rnd() * 3) }, () => 0xff))]);
      const r = new FrameReader();
      const out: Buffer[] = [];
      for (let at = 0; at < stream.length;) {
        const n = 1 + Math.floor(rnd() * 64);
        out.push(...r.push(stream.subarray(at, at + n)));
        at += n;
      }
      assert.deepEqual(
        out.slice(0, msgs.length).map((b) => b.toString('hex')),
        msgs.map((b) => b.toString('hex')),
      );
      for (const m of out) handle(m);
    }
  });
});
