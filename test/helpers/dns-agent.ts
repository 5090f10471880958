/**
 * A DNS client that lives in a container namespace (started by test/helpers/dns.ts through
 * `ip netns exec`): one JSON request per stdin line, one JSON reply per stdout line.
 * - `{ op: 'resolve', server, name, rrtype }` and `{ op: 'reverse', server, ip }` ask through
 *   c-ares (Node's dns.Resolver), a client independent of the resolver under test;
 * - `{ op: 'raw', server, hex, tcp?, wait? }` sends bytes as they are (UDP, or one TCP
 *   connection) and returns the reply's bytes (null when none came within `wait` ms).
 */
import * as dgram from 'node:dgram';
import { promises as dns } from 'node:dns';
import * as net from 'node:net';
import * as readline from 'node:readline';

interface Request {
  n: number;
  op: 'resolve' | 'reverse' | 'raw';
  server: string;
  name?: string;
  rrtype?: string;
  ip?: string;
  hex?: string;
  tcp?: boolean;
  wait?: number;
  port?: number;
}

async function resolve(r: Request): Promise<unknown> {
  const res = new dns.Resolver({ timeout: r.wait ?? 3000, tries: 1 });
  res.setServers([net.isIPv6(r.server) ? `[${r.server}]:${r.port ?? 53}` : `${r.server}:${r.port ?? 53}`]);
  try {
    if (r.op === 'reverse') return { ok: true, result: await res.reverse(r.ip!) };
    return { ok: true, result: await res.resolve(r.name!, r.rrtype ?? 'A') };
  } catch (e) {
    return { ok: false, code: (e as { code?: string }).code };
  }
}

function raw(r: Request): Promise<unknown> {
  const bytes = Buffer.from(r.hex ?? '', 'hex');
  const wait = r.wait ?? 1000;
  const port = r.port ?? 53;
  return new Promise((resolve) => {
    if (r.tcp) {
      const chunks: Buffer[] = [];
      const c = net.connect(port, r.server);
      const done = (): void => {
        clearTimeout(t);
        c.destroy();
        resolve({ ok: true, result: chunks.length ? Buffer.concat(chunks).toString('hex') : null });
      };
      const t = setTimeout(done, wait);
      c.on('connect', () => c.write(bytes));
      c.on('data', (d: Buffer) => {
        chunks.push(d);
        const all = Buffer.concat(chunks);
        if (all.length >= 2 && all.length >= 2 + all.readUInt16BE(0)) done();
      });
      c.on('error', (e) => {
        clearTimeout(t);
        resolve({ ok: false, code: (e as { code?: string }).code });
      });
      c.on('close', () => done());
      return;
    }
    const s = dgram.createSocket(net.isIPv6(r.server) ? 'udp6' : 'udp4');
    const t = setTimeout(() => {
      s.close();
      resolve({ ok: true, result: null });
    }, wait);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      resolve({ ok: true, result: m.toString('hex') });
    });
    s.on('error', (e) => {
      clearTimeout(t);
      s.close();
      resolve({ ok: false, code: (e as { code?: string }).code });
    });
    s.send(bytes, port, r.server);
  });
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const r = JSON.parse(line) as Request;
  const p = r.op === 'raw' ? raw(r) : resolve(r);
  void p.then((out) => process.stdout.write(`${JSON.stringify({ n: r.n, ...(out as object) })}\n`));
});
rl.on('close', () => process.exit(0));
process.stdout.write('{"ready":true}\n');
