/**
 * Suite "dns": nsnet's embedded resolver against aardvark-dns 1.4 (Podman's; Debian package,
 * /usr/lib/podman/aardvark-dns), both in one host namespace answering the same 20 names for the
 * containers of one bridge network: nsnet's on the gateway 172.30.0.1, aardvark on a second
 * address of the same bridge (172.30.255.254), so the packets take the same path.
 *
 * Measured from a container namespace, the same client (bench/dns-load.ts) for both:
 * - latency: 2,000 A queries one after another (µs per round trip);
 * - rate: 32 queries in flight for 2 s from two client processes (answers per second; see
 *   rateRun), and the CPU time the server spent per answer;
 * - churn: the rate run again while the records change 10 times — nsnet: connect() of a new
 *   endpoint; aardvark: its network file rewritten with one more name and SIGHUP, what netavark
 *   does on each container start — and the queries that got no answer (aardvark-dns#389);
 * - visible: time from connect() returning (aardvark: from the SIGHUP) to the new name answering
 *   from the container, asking again at once on each NXDOMAIN.
 * nsnet's resolver runs in the bench process (runDns), as in the daemon; aardvark as its own
 * process (it forks into the background as netavark starts it).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as dgram from 'node:dgram';
import * as dnsPacket from 'dns-packet';
import { NetworkHost, runDns } from '../lib/index';
import { openNetns } from '../lib/netns';
import { HostSockets } from '../lib/dns/sockets';
import { flushLinks, globalBatch, now, round, run, sleep, stats, summarize, withNetns, type Suite, type SuiteOptions, type SummaryRow } from './common';

export const AARDVARK = '/usr/lib/podman/aardvark-dns';
const NSNET_DNS = '172.30.0.1';
const AARDVARK_DNS = '172.30.255.254';
const NAMES = 20;
const CHURN = 10;
const VISIBLE = 20;

interface Latency {
  samples_us: number[];
  lost: number;
  errors: number;
}
interface Rate {
  qps: number;
  sent: number;
  answered: number;
  lost: number;
  errors: number;
}

/** Runs the load client in `ns` without blocking this process's event loop (the nsnet resolver lives here). */
function load<T>(ns: string, args: Record<string, unknown>): Promise<T> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', ns, process.execPath, path.join(__dirname, 'dns-load.js'), JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as T) : reject(new Error(`dns-load exited ${code}: ${err.slice(0, 500)}`)),
    );
  });
}

/**
 * The rate runs: CLIENTS load processes in the container, 32 queries in flight between them, for
 * 2 s; their answers added up. Two, not one: one Node client spends more CPU per query than
 * either server (~35 µs, where nsnet's resolver spends ~20 and aardvark ~33), so alone it would
 * measure itself; two can keep both cores busy, and then what a server spends per query decides
 * the rate.
 */
const CLIENTS = 2;
async function rateRun(ns: string, server: string, names: string[], clients = CLIENTS): Promise<Rate> {
  const parts = await Promise.all(Array.from({ length: clients }, () => load<Rate>(ns, { server, names, mode: 'rate', window: 32 / clients, ms: 2000 })));
  const sum = (f: (r: Rate) => number): number => parts.reduce((s, r) => s + f(r), 0);
  return { qps: sum((r) => r.qps), sent: sum((r) => r.sent), answered: sum((r) => r.answered), lost: sum((r) => r.lost), errors: sum((r) => r.errors) };
}

/** Asks `server` for `name` from `sock` until it answers with an address; ms from `t0`. */
async function untilResolves(sock: dgram.Socket, server: string, name: string, t0: number): Promise<number> {
  const q = dnsPacket.encode({ type: 'query', id: 1, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });
  for (let id = 1; ; id++) {
    q.writeUInt16BE(id & 0xffff, 0);
    const ok = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => {
        sock.off('message', on);
        resolve(false);
      }, 200);
      const on = (m: Buffer): void => {
        if (m.readUInt16BE(0) !== (id & 0xffff)) return;
        clearTimeout(t);
        sock.off('message', on);
        resolve((m[3]! & 0xf) === 0 && m.readUInt16BE(6) > 0);
      };
      sock.on('message', on);
      sock.send(q, 53, server);
    });
    if (ok) return now() - t0;
    if (now() - t0 > 10000) throw new Error(`${name} never resolved at ${server}`);
  }
}

const processCpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
/** utime + stime of a process (all its threads) in µs, from /proc (clock ticks of 10 ms: USER_HZ is 100 on Linux). */
function pidCpuUs(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10000;
}

interface Rep {
  lat: Record<string, Latency>;
  rate: Record<string, Rate>;
  /** The same with one client process (32 in flight): what that client can ask. */
  rate1: Record<string, Rate>;
  /** The server's CPU time (user + system, all its threads) per answered query of the rate run, µs. */
  cpu: Record<string, number>;
  churn: Record<string, Rate>;
  visible: Record<string, number[]>;
}

async function repetition(o: SuiteOptions, prefix: string): Promise<Rep> {
  return withNetns(async (h) => {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-dns-'));
    const conf = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-bench-aardvark-'));
    const resolvConf = path.join(stateDir, 'resolv.conf');
    fs.writeFileSync(resolvConf, 'nameserver 127.0.0.1\n');
    const host = await NetworkHost.open({ stateDir, netns: h });
    let aardvarkPid: number | undefined;
    const dns = await runDns({ stateDir, netns: h, resolvConf });
    const client = `${prefix}client`;
    try {
      await host.createNetwork({ name: 'app', subnet: '172.30.0.0/16' });
      await dns.sync();
      const eps: string[] = [];
      for (let i = 0; i < NAMES; i++) eps.push(`c${i} ${(await host.connect('app', { id: `c${i}`, netns: `${prefix}${i}` })).ipv4!.split('/')[0]}`);
      await host.connect('app', { id: 'client', netns: client });
      const bridge = ((await host.listNetworks()).find((n) => n.name === 'app') as { bridge: string }).bridge;
      run('ip', ['-n', h, 'addr', 'add', `${AARDVARK_DNS}/16`, 'dev', bridge]);
      // aardvark's network file: listen address, then "id ipv4 ipv6 names" per container.
      const lines = eps.map((e) => {
        const [id, ip] = e.split(' ');
        return `${id!.padEnd(64, '0')} ${ip}  ${id}`;
      });
      const file = path.join(conf, 'app');
      fs.writeFileSync(file, `${AARDVARK_DNS}\n${lines.join('\n')}\n`);
      run('ip', ['netns', 'exec', h, AARDVARK, '--config', conf, '-p', '53', 'run']);
      aardvarkPid = Number(fs.readFileSync(path.join(conf, 'aardvark.pid'), 'utf8').trim());
      const names = eps.map((e) => e.split(' ')[0]!);
      const servers: Record<string, string> = { nsnet: NSNET_DNS, aardvark: AARDVARK_DNS };
      const order = ['nsnet', 'aardvark'];
      const rep: Rep = { lat: {}, rate: {}, rate1: {}, cpu: {}, churn: {}, visible: { nsnet: [], aardvark: [] } };
      // nsnet: this whole process (its resolver, and the NetworkHost idle beside it); aardvark: its process.
      const cpuOf = (t: string): number => (t === 'nsnet' ? processCpuUs() : pidCpuUs(aardvarkPid!));
      for (const t of order)
        rep.lat[t] = await load<Latency>(client, { server: servers[t], names, mode: 'latency', count: Math.max(200, Math.round(2000 * o.scale)) });
      for (const t of [...order].reverse()) {
        const c0 = cpuOf(t);
        rep.rate[t] = await rateRun(client, servers[t]!, names);
        rep.cpu[t] = (cpuOf(t) - c0) / Math.max(1, rep.rate[t]!.answered);
        rep.rate1[t] = await rateRun(client, servers[t]!, names, 1);
      }

      // Churn: the records change while the load runs.
      const pool = Array.from({ length: CHURN }, (_, i) => `${prefix}n${i}`);
      const churnNsnet = rateRun(client, NSNET_DNS, names);
      await sleep(300);
      for (let i = 0; i < CHURN; i++) {
        await host.connect('app', { id: `churn${i}`, netns: pool[i]! });
        await sleep(100);
      }
      rep.churn.nsnet = await churnNsnet;
      for (let i = 0; i < CHURN; i++) await host.disconnect('app', `churn${i}`);
      const churnAardvark = rateRun(client, AARDVARK_DNS, names);
      await sleep(300);
      for (let i = 0; i < CHURN; i++) {
        lines.push(`${`churn${i}`.padEnd(64, '0')} 172.30.200.${i + 1}  churn${i}`);
        fs.writeFileSync(file, `${AARDVARK_DNS}\n${lines.join('\n')}\n`);
        process.kill(aardvarkPid, 'SIGHUP');
        await sleep(100);
      }
      rep.churn.aardvark = await churnAardvark;

      // Visible: from connect() returning (or the SIGHUP) to the name answering in the container.
      const cns = openNetns(client);
      const sock = await new HostSockets(cns).udpClient(4);
      try {
        for (let i = 0; i < Math.max(5, Math.round(VISIBLE * o.scale)); i++) {
          await host.connect('app', { id: `late${i}`, netns: pool[i % CHURN]! });
          rep.visible.nsnet!.push(await untilResolves(sock, NSNET_DNS, `late${i}`, now()));
          await host.disconnect('app', `late${i}`);
          lines.push(`${`late${i}`.padEnd(64, '0')} 172.30.201.${i + 1}  late${i}`);
          fs.writeFileSync(file, `${AARDVARK_DNS}\n${lines.join('\n')}\n`);
          process.kill(aardvarkPid, 'SIGHUP');
          rep.visible.aardvark!.push(await untilResolves(sock, AARDVARK_DNS, `late${i}`, now()));
        }
      } finally {
        sock.close();
        cns.close();
      }
      o.log(
        `  nsnet: ${round(stats(rep.lat.nsnet!.samples_us).median, 0)} µs, ${round(rep.rate.nsnet!.qps, 0)} q/s (${round(rep.cpu.nsnet!, 1)} µs CPU each), churn lost ${rep.churn.nsnet!.lost}, visible ${round(stats(rep.visible.nsnet!).median, 2)} ms; ` +
          `aardvark: ${round(stats(rep.lat.aardvark!.samples_us).median, 0)} µs, ${round(rep.rate.aardvark!.qps, 0)} q/s (${round(rep.cpu.aardvark!, 1)} µs CPU each), churn lost ${rep.churn.aardvark!.lost}, visible ${round(stats(rep.visible.aardvark!).median, 2)} ms`,
      );
      return rep;
    } finally {
      if (aardvarkPid) {
        try {
          process.kill(aardvarkPid, 'SIGTERM');
        } catch {
          /* gone */
        }
      }
      await dns.close();
      await host.close();
      fs.rmSync(stateDir, { recursive: true, force: true });
      fs.rmSync(conf, { recursive: true, force: true });
    }
  }, flushLinks);
}

export const dnsSuite: Suite = {
  name: 'dns',
  title: 'embedded DNS: latency, queries/s, queries lost while records change, time to a new name — nsnet vs aardvark-dns 1.4',
  async run(o: SuiteOptions) {
    const reps = Math.max(1, Math.round(3 * o.scale));
    const prefix = `nsd${process.pid}`;
    const spaces = [
      ...Array.from({ length: NAMES }, (_, i) => `${prefix}${i}`),
      ...Array.from({ length: CHURN }, (_, i) => `${prefix}n${i}`),
      `${prefix}client`,
    ];
    globalBatch(spaces.map((n) => `netns add ${n}`));
    const all: Rep[] = [];
    try {
      for (let r = 0; r < reps; r++) {
        all.push(await repetition(o, prefix));
        await sleep(500);
      }
    } finally {
      globalBatch(spaces.map((n) => `netns del ${n}`));
    }
    const tools = [
      { tool: 'nsnet', label: 'nsnet resolver (runDns, in process)', nsnet: true },
      { tool: 'aardvark', label: 'aardvark-dns 1.4 (process)', nsnet: false },
    ];
    const rows = (f: (r: Rep, t: string) => number[], timing: string): SummaryRow[] =>
      tools.map((t) => ({
        tool: t.tool,
        label: t.label,
        nsnet: t.nsnet,
        items: 1,
        samples: all.flatMap((r) => f(r, t.tool)),
        groups: all.map((r) => f(r, t.tool)),
        timing,
      }));
    const us = { unit: 'µs', higher_is_better: false };
    const qps = { unit: 'queries/s', higher_is_better: true };
    const ms = { unit: 'ms', higher_is_better: false };
    const lat = rows((r, t) => r.lat[t]!.samples_us, 'round trip from the container');
    const rate = rows((r, t) => [r.rate[t]!.qps], '2 clients × 16 in flight, 2 s');
    const rate1 = rows((r, t) => [r.rate1[t]!.qps], '1 client × 32 in flight, 2 s');
    const churn = rows((r, t) => [r.churn[t]!.qps], '2 clients × 16 in flight, 2 s, 10 record changes');
    const cpu = rows((r, t) => [r.cpu[t]!], 'CPU time of the server process / answers, 2 clients × 16 in flight');
    const visible = rows((r, t) => r.visible[t]!, 'connect() returned (aardvark: SIGHUP sent) → answer');
    const med = (t: string, f: (r: Rep) => number[]): number => stats(all.flatMap(f)).median;
    const rateOf = (t: string): number => med(t, (r) => [r.rate[t]!.qps]);
    const lostOf = (t: string): number => all.reduce((s, r) => s + r.churn[t]!.lost, 0);
    const sentOf = (t: string): number => all.reduce((s, r) => s + r.churn[t]!.sent, 0);
    const vis = stats(all.flatMap((r) => r.visible.nsnet!));
    return {
      workloads: [
        {
          id: 'latency',
          title: 'query latency (A, a name of the network)',
          unit: 'query',
          reference: 'aardvark',
          value: us,
          tools: summarize(lat, 'aardvark', us),
        },
        {
          id: 'rate',
          title: 'queries per second',
          unit: 'query',
          reference: 'aardvark',
          value: qps,
          note: 'Two client processes, 16 queries in flight each (one Node client alone saturates before either server). On 2 cores the clients and the server share the machine: the rate is bounded by the CPU all of them spend per query; the next table is what the server spends.',
          tools: summarize(rate, 'aardvark', qps),
        },
        {
          id: 'rate1',
          title: 'queries per second from one client process',
          unit: 'query',
          reference: 'aardvark',
          value: qps,
          note: 'One Node client process spends more CPU per query than either server: this measures the client as much as the server (not the target; shown for comparison with earlier runs).',
          tools: summarize(rate1, 'aardvark', qps),
        },
        {
          id: 'cpu',
          title: 'server CPU time per answered query (the rate run)',
          unit: 'query',
          reference: 'aardvark',
          value: us,
          tools: summarize(cpu, 'aardvark', us),
        },
        {
          id: 'churn',
          title: 'queries per second while the records change',
          unit: 'query',
          reference: 'aardvark',
          value: qps,
          note: `queries that got no answer within 250 ms: nsnet ${lostOf('nsnet')} of ${sentOf('nsnet')}, aardvark ${lostOf('aardvark')} of ${sentOf('aardvark')}.`,
          tools: summarize(churn, 'aardvark', qps),
        },
        {
          id: 'visible',
          title: 'a new name: from connect() returning to its first answer',
          unit: 'name',
          reference: 'aardvark',
          value: ms,
          tools: summarize(visible, 'aardvark', ms),
        },
      ],
      targets: [
        {
          id: 'dns-rate',
          text: "queries/s at least aardvark-dns's",
          met: rateOf('nsnet') >= rateOf('aardvark'),
          status: rateOf('nsnet') >= rateOf('aardvark') ? 'met' : 'missed',
          detail: `nsnet ${round(rateOf('nsnet'), 0)}/s, aardvark ${round(rateOf('aardvark'), 0)}/s`,
        },
        {
          id: 'dns-visible',
          text: 'a name resolves within 10 ms of connect() returning',
          met: vis.p95 <= 10,
          status: vis.p95 <= 10 ? 'met' : 'missed',
          detail: `median ${round(vis.median, 2)} ms, p95 ${round(vis.p95, 2)} ms, max ${round(vis.max, 2)} ms`,
        },
        {
          id: 'dns-churn',
          text: 'no query lost while records change',
          met: lostOf('nsnet') === 0,
          status: lostOf('nsnet') === 0 ? 'met' : 'missed',
          detail: `nsnet lost ${lostOf('nsnet')}, aardvark lost ${lostOf('aardvark')}`,
        },
      ],
      notes: [
        `${reps} repetitions, each a fresh host namespace and state directory. Both resolvers answer the same ${NAMES} names on one bridge; the load clients (bench/dns-load.ts) run in a container namespace. ` +
          'nsnet shares its process with the NetworkHost that connects endpoints during the churn run, as in the daemon.',
      ],
    };
  },
};
