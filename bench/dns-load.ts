/**
 * The DNS bench's client, run inside a container namespace (`ip netns exec`): argv[2] is JSON
 * { server, names, mode, count?, window?, ms? }. Prints one JSON line.
 * - latency: `count` queries one after another (A for a name of `names`, round robin); each
 *   round trip in µs, or lost after 1 s.
 * - rate: `window` queries in flight for `ms` ms; answers per second, and queries never answered
 *   (counted 500 ms after the end).
 * The queries are encoded once (dns-packet) and only their ids change.
 */
import * as dgram from 'node:dgram';
import * as dnsPacket from 'dns-packet';

interface Args {
  server: string;
  names: string[];
  mode: 'latency' | 'rate';
  count?: number;
  window?: number;
  ms?: number;
}
const a = JSON.parse(process.argv[2]!) as Args;
const queries = a.names.map((name) => dnsPacket.encode({ type: 'query', id: 0, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] }));
const sock = dgram.createSocket('udp4');
const hr = (): number => Number(process.hrtime.bigint()) / 1000;

function send(id: number): void {
  // A copy each time: dgram sends on a later tick, so a shared buffer would go out with the last id written.
  const q = Buffer.from(queries[id % queries.length]!);
  q.writeUInt16BE(id & 0xffff, 0);
  sock.send(q, 53, a.server);
}

async function latency(): Promise<void> {
  const count = a.count ?? 2000;
  const samples: number[] = [];
  let lost = 0;
  let errors = 0;
  for (let i = 0; i < count; i++) {
    const t0 = hr();
    const ok = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => {
        sock.off('message', on);
        resolve(false);
      }, 1000);
      const on = (m: Buffer): void => {
        if (m.readUInt16BE(0) !== (i & 0xffff)) return;
        clearTimeout(t);
        sock.off('message', on);
        if ((m[3]! & 0xf) !== 0 || m.readUInt16BE(6) === 0) errors++;
        resolve(true);
      };
      sock.on('message', on);
      send(i);
    });
    if (ok) samples.push(hr() - t0);
    else lost++;
  }
  process.stdout.write(`${JSON.stringify({ samples_us: samples, lost, errors })}\n`);
}

async function rate(): Promise<void> {
  const window = a.window ?? 32;
  const ms = a.ms ?? 2000;
  const out = new Map<number, number>();
  let sent = 0;
  let answered = 0;
  let errors = 0;
  let lost = 0;
  let stop = false;
  const next = (): void => {
    const id = sent++ & 0xffff;
    out.set(id, hr());
    send(id);
  };
  sock.on('message', (m) => {
    if (!out.delete(m.readUInt16BE(0))) return;
    answered++;
    if ((m[3]! & 0xf) !== 0 || m.readUInt16BE(6) === 0) errors++;
    if (!stop) next();
  });
  const t0 = hr();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < window; i++) next();
  // A query not answered within 250 ms is lost (dropped by a reload, by a full socket buffer):
  // counted, and replaced so that the window stays full.
  const sweep = setInterval(() => {
    const old = hr() - 250000;
    for (const [id, t] of out) {
      if (t >= old) continue;
      out.delete(id);
      lost++;
      if (!stop) next();
    }
  }, 10);
  await new Promise((r) => setTimeout(r, ms));
  stop = true;
  const elapsed = (hr() - t0) / 1e6;
  const answeredInTime = answered;
  const cpu = process.cpuUsage(cpu0);
  await new Promise((r) => setTimeout(r, 500));
  clearInterval(sweep);
  process.stdout.write(`${JSON.stringify({ qps: answeredInTime / elapsed, sent, answered, lost: lost + out.size, errors, cpu_us: cpu.user + cpu.system })}\n`);
}

sock.bind(0, () => void (a.mode === 'latency' ? latency() : rate()).then(() => process.exit(0)));
