/**
 * Echo servers and clients for traffic tests, IPv4 and IPv6 alike: each answer names the server
 * and the address it saw the client come from, so a test can tell who answered and what NAT did.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { registerCleanup } from './sandbox';

/**
 * Starts an echo server in `ns`: TCP and UDP on every address of both families (dual-stack
 * sockets), each answer "<name>:<local port> <peer address>" (IPv4 peers without `::ffff:`).
 */
export async function echoServer(ns: string, name: string, tcp: number[], udp: number[]): Promise<void> {
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      `
    const net = require('net'), dgram = require('dgram');
    const peer = (a) => a.replace(/^::ffff:/, '');
    let pending = ${tcp.length + udp.length};
    const up = () => { if (--pending === 0) console.log('ready'); };
    for (const p of ${JSON.stringify(tcp)}) {
      const s = net.createServer((c) => c.end(${JSON.stringify(name)} + ':' + p + ' ' + peer(c.remoteAddress)));
      s.on('error', (e) => { console.error(e.message); process.exit(2); });
      s.listen({ port: p, host: '::', ipv6Only: false }, up);
    }
    for (const p of ${JSON.stringify(udp)}) {
      const s = dgram.createSocket({ type: 'udp6', ipv6Only: false });
      s.on('message', (m, r) => s.send(${JSON.stringify(name)} + ':' + p + ' ' + peer(r.address), r.port, r.address));
      s.on('error', (e) => { console.error(e.message); process.exit(2); });
      s.bind(p, '::', up);
    }
    setTimeout(() => process.exit(0), 900000);`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  registerCleanup(() => child.kill(), `stop echo server in ${ns}`);
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
  });
  const ready = await new Promise<boolean>((resolve) => {
    child.stdout.once('data', () => resolve(true));
    child.once('exit', () => resolve(false));
  });
  assert.ok(ready, `the echo server in ${ns} did not start: ${err}`);
}

/** One client request. */
export interface Ask {
  proto: 'tcp' | 'udp';
  /** IPv4 or IPv6 address (no brackets). */
  addr: string;
  port: number;
  /** Source port (UDP: the same flow every time). */
  localPort?: number;
}

/**
 * Runs clients in `ns`, all at once in one process: each result is the server's answer, or
 * "error:<code>" / "timeout". Bounded by `timeoutMs`.
 */
export function ask(ns: string, asks: Ask[], timeoutMs = 1500): string[] {
  const r = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      `
    const net = require('net'), dgram = require('dgram');
    const one = (a) => new Promise((resolve) => {
      const t = setTimeout(() => resolve('timeout'), ${timeoutMs});
      const done = (x) => { clearTimeout(t); resolve(x); };
      if (a.proto === 'tcp') {
        const c = net.connect({ host: a.addr, port: a.port, ...(a.localPort ? { localPort: a.localPort } : {}) });
        let d = ''; c.on('data', (x) => { d += x; });
        c.on('end', () => done(d.trim()));
        c.on('error', (e) => done('error:' + e.code));
        setTimeout(() => c.destroy(), ${timeoutMs});
      } else {
        const s = dgram.createSocket(net.isIPv6(a.addr) ? 'udp6' : 'udp4');
        s.on('message', (m) => { s.close(); done(String(m)); });
        s.on('error', (e) => { done('error:' + e.code); });
        s.bind(a.localPort || 0, () => s.send('hi', a.port, a.addr));
        setTimeout(() => { try { s.close(); } catch {} }, ${timeoutMs});
      }
    });
    Promise.all(${JSON.stringify(asks)}.map(one)).then((r) => { console.log(JSON.stringify(r)); process.exit(0); });`,
    ],
    { encoding: 'utf8', timeout: timeoutMs + 8000 },
  );
  assert.equal(r.status, 0, `clients in ${ns} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '[]');
}

export const tcp = (ns: string, addr: string, port: number, timeoutMs?: number): string => ask(ns, [{ proto: 'tcp', addr, port }], timeoutMs)[0]!;
export const udp = (ns: string, addr: string, port: number, localPort?: number, timeoutMs?: number): string =>
  ask(ns, [{ proto: 'udp', addr, port, ...(localPort ? { localPort } : {}) }], timeoutMs)[0]!;
/** Not answered: refused, unreachable or silent. */
export const failed = (x: string): boolean => x === 'timeout' || x.startsWith('error:');
