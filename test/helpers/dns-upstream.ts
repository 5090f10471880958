/**
 * A stand-in upstream DNS server for the tests, run in the "external" namespace (started by
 * test/helpers/dns.ts through `ip netns exec`). argv[2]: JSON { address, port, zone } where zone
 * maps a lowercase name to { A?: string[], TXT?: number (that many 100-byte strings) }. Over UDP
 * an answer larger than the client takes (512, or its EDNS size) goes back empty with TC, as a
 * real server does. Prints one JSON line per query ({ name, type, transport }) after "ready".
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import * as dnsPacket from 'dns-packet';

interface Conf {
  address: string;
  port: number;
  zone: Record<string, { A?: string[]; TXT?: number }>;
}

const conf = JSON.parse(process.argv[2]!) as Conf;

function answer(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
  let q: dnsPacket.DecodedPacket;
  try {
    q = dnsPacket.decode(msg);
  } catch {
    return undefined;
  }
  const question = q.questions?.[0];
  if (!question) return undefined;
  process.stdout.write(`${JSON.stringify({ name: question.name, type: question.type, transport })}\n`);
  const rec = conf.zone[question.name.toLowerCase()];
  const answers: dnsPacket.Answer[] = [];
  if (rec && question.type === 'A') for (const a of rec.A ?? []) answers.push({ type: 'A', name: question.name, ttl: 60, data: a });
  if (rec && question.type === 'TXT')
    for (let i = 0; i < (rec.TXT ?? 0); i++)
      answers.push({ type: 'TXT', name: question.name, ttl: 60, data: `${String(i).padStart(3, '0')}${'x'.repeat(97)}` });
  const opt = (q.additionals ?? []).find((a) => a.type === 'OPT') as dnsPacket.OptAnswer | undefined;
  const base = {
    type: 'response' as const,
    id: q.id,
    questions: [question],
    additionals: opt
      ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [] } as unknown as dnsPacket.Answer]
      : [],
  };
  const rcode = rec ? 0 : 3;
  const flags = dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | rcode;
  const full = dnsPacket.encode({ ...base, flags, answers });
  const limit = transport === 'tcp' ? 65535 : opt ? Math.max(512, opt.udpPayloadSize) : 512;
  if (full.length <= limit) return full;
  return dnsPacket.encode({ ...base, flags: flags | dnsPacket.TRUNCATED_RESPONSE, answers: [] });
}

const udp = dgram.createSocket(net.isIPv6(conf.address) ? 'udp6' : 'udp4');
udp.on('message', (m, r) => {
  const out = answer(m, 'udp');
  if (out) udp.send(out, r.port, r.address);
});
const tcp = net.createServer((c) => {
  let buf = Buffer.alloc(0);
  c.on('error', () => undefined);
  c.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
      buf = buf.subarray(2 + msg.length);
      const out = answer(msg, 'tcp');
      if (out) {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(out.length);
        c.write(Buffer.concat([len, out]));
      }
    }
  });
});
udp.bind(conf.port, conf.address, () => tcp.listen(conf.port, conf.address, () => process.stdout.write('ready\n')));
