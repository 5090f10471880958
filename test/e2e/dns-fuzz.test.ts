/**
 * Fuzzing the running resolver over its real sockets: the kept corpus and seeded mutants of it
 * (test/helpers/dns-fuzz.ts) as UDP datagrams and as TCP streams, sent in process from a socket
 * in a container's namespace to its network's gateway. After every batch a valid query must still get
 * its answer (a crash or a stall fails it), and every reply that comes back must decode, be a
 * response and carry the id of a query that was sent.
 *
 * Budget: NSNET_DNS_FUZZ_DATAGRAMS (default 3000); seed NSNET_DNS_FUZZ_SEED (default 1).
 */
import * as assert from 'node:assert/strict';
import type * as dgram from 'node:dgram';
import * as dnsPacket from 'dns-packet';
import { runDns, type DnsResolver } from '../../lib/index';
import { openNetns } from '../../lib/netns';
import { HostSockets } from '../../lib/dns/sockets';
import { useSandbox, registerCleanup } from '../helpers/sandbox';
import { makeWorld } from '../helpers/world';
import { makeNetns } from '../helpers/sandbox';
import { corpus, keepCrash, mutate, prng } from '../helpers/dns-fuzz';

const DATAGRAMS = Number(process.env.NSNET_DNS_FUZZ_DATAGRAMS ?? 3000);
const SEED = Number(process.env.NSNET_DNS_FUZZ_SEED ?? 1);
const GW = '172.30.0.1';

describe('embedded DNS under fuzzing (real sockets)', function () {
  this.timeout(300000);
  useSandbox();

  it(`survives the corpus and ${DATAGRAMS} mutants over UDP and TCP, answering throughout`, async () => {
    const w = await makeWorld({ prefix: 'df', hostIp: '10.98.0.1', extIp: '10.98.0.2' });
    await w.host.createNetwork({ name: 'app', subnet: '172.30.0.0/16' });
    const c = await makeNetns('dfc');
    await w.host.connect('app', { id: 'web', netns: c });
    const dns: DnsResolver = await runDns({ stateDir: w.stateDir, netns: w.h, resolvConf: '/dev/null', upstreamTimeout: 200 });
    registerCleanup(() => dns.close());
    // The sockets are made inside the container's namespace (by the addon, on a helper thread).
    const ns = openNetns(c);
    registerCleanup(() => ns.close());
    const hs = new HostSockets(ns);
    const sock: dgram.Socket = await hs.udpClient(4);
    registerCleanup(() => sock.close());

    const sentIds = new Set<number>();
    const canary = new Map<number, () => void>();
    const bad: string[] = [];
    sock.on('message', (m) => {
      try {
        const d = dnsPacket.decode(m);
        if (d.type !== 'response') bad.push(`not a response: ${m.toString('hex')}`);
        if (!sentIds.has(d.id ?? -1)) bad.push(`an id never sent: ${d.id}`);
        canary.get(d.id ?? -1)?.();
      } catch (e) {
        bad.push(`undecodable reply ${m.toString('hex')}: ${(e as Error).message}`);
      }
    });
    let canaryId = 60000;
    const alive = async (): Promise<void> => {
      const id = canaryId++;
      sentIds.add(id);
      const got = new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), 5000);
        canary.set(id, () => {
          clearTimeout(t);
          resolve(true);
        });
      });
      sock.send(dnsPacket.encode({ type: 'query', id, questions: [{ type: 'A', name: 'web' }] }), 53, GW);
      assert.ok(await got, 'a valid query is still answered');
    };

    const seeds = corpus().map((c) => c.bytes);
    const rnd = prng(SEED);
    const inputs = [...seeds, ...Array.from({ length: DATAGRAMS }, () => mutate(seeds, rnd))];
    for (let i = 0; i < inputs.length; i++) {
      const b = inputs[i]!;
      if (b.length >= 2) sentIds.add(b.readUInt16BE(0));
      sock.send(b, 53, GW);
      if (i % 100 === 99) {
        await alive();
        if (bad.length) assert.fail(`${bad[0]} (input kept as ${keepCrash(b)})`);
      }
    }
    await alive();

    // The same over TCP: each stream a few framed mutants, some with lying lengths, in odd chunks.
    for (let i = 0; i < 60; i++) {
      const parts = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => {
        const m = mutate(seeds, rnd);
        const len = Buffer.alloc(2);
        len.writeUInt16BE(rnd() < 0.1 ? Math.floor(rnd() * 65536) : m.length);
        return Buffer.concat([len, m]);
      });
      const conn = await hs.tcpConnect({ address: GW, port: 53, family: 4 }, 2000);
      await new Promise<void>((resolve) => {
        const stream = Buffer.concat(parts);
        conn.on('error', () => resolve());
        conn.on('close', () => resolve());
        conn.on('data', () => undefined);
        for (let at = 0; at < stream.length; at += 7) conn.write(stream.subarray(at, at + 7));
        setTimeout(() => conn.destroy(), 50);
      });
    }
    await alive();
    const s = dns.stats;
    assert.ok(s.dropped > 0 && s.formerr > 0 && s.local > 0, JSON.stringify(s));
    assert.deepEqual(bad, []);
  });
});
