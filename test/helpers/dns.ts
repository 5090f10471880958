/**
 * DNS from the tests' namespaces: a client agent living in a container namespace (queries through
 * c-ares, or raw bytes over UDP/TCP), and a stand-in upstream server in the external namespace.
 * Both are separate processes started with `ip netns exec`, torn down with the test.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { registerCleanup } from './sandbox';

const AGENT = path.join(__dirname, 'dns-agent.js');
const UPSTREAM = path.join(__dirname, 'dns-upstream.js');

export type Lookup = { ok: true; result: unknown } | { ok: false; code: string };

/** A DNS client in namespace `ns`. */
export class DnsClient {
  private n = 0;
  private readonly waiting = new Map<number, (v: Lookup) => void>();

  private constructor(private readonly p: ChildProcessByStdio<Writable, Readable, null>) {
    readline.createInterface({ input: p.stdout }).on('line', (line) => {
      const { n, ...m } = JSON.parse(line) as { n?: number } & Lookup;
      if (n !== undefined) this.waiting.get(n)?.(m as Lookup);
    });
  }

  static async start(ns: string): Promise<DnsClient> {
    const p = spawn('ip', ['netns', 'exec', ns, process.execPath, AGENT], { stdio: ['pipe', 'pipe', 'inherit'] });
    registerCleanup(() => {
      p.kill();
    });
    await new Promise<void>((resolve, reject) => {
      p.stdout.once('data', () => resolve());
      p.once('exit', (code) => reject(new Error(`dns agent in ${ns} exited (${code})`)));
    });
    return new DnsClient(p);
  }

  private ask(req: Record<string, unknown>): Promise<Lookup> {
    const n = this.n++;
    return new Promise((resolve) => {
      this.waiting.set(n, (v) => {
        this.waiting.delete(n);
        resolve(v);
      });
      this.p.stdin.write(`${JSON.stringify({ n, ...req })}\n`);
    });
  }

  /** resolve(name, rrtype) through c-ares against `server` (one try). */
  resolve(server: string, name: string, rrtype = 'A', wait = 3000): Promise<Lookup> {
    return this.ask({ op: 'resolve', server, name, rrtype, wait });
  }

  reverse(server: string, ip: string): Promise<Lookup> {
    return this.ask({ op: 'reverse', server, ip });
  }

  /** Sends `bytes` to server:53 (UDP, or one TCP connection); the reply, or null after `wait` ms. */
  async raw(server: string, bytes: Buffer, o: { tcp?: boolean; wait?: number } = {}): Promise<Buffer | null> {
    const r = await this.ask({ op: 'raw', server, hex: bytes.toString('hex'), tcp: o.tcp ?? false, wait: o.wait ?? 1000 });
    if (!r.ok) throw new Error(`raw query to ${server}: ${r.code}`);
    return r.result === null ? null : Buffer.from(r.result as string, 'hex');
  }
}

/** A stand-in upstream server (see dns-upstream.ts) in `ns` on address:port. */
export class DnsUpstream {
  /** Every query it got: { name, type, transport }. */
  readonly seen: { name: string; type: string; transport: string }[] = [];

  private constructor(readonly address: string) {}

  static async start(ns: string, address: string, zone: Record<string, { A?: string[]; TXT?: number }>, port = 53): Promise<DnsUpstream> {
    const u = new DnsUpstream(address);
    const p = spawn('ip', ['netns', 'exec', ns, process.execPath, UPSTREAM, JSON.stringify({ address, port, zone })], { stdio: ['ignore', 'pipe', 'inherit'] });
    registerCleanup(() => {
      p.kill();
    });
    await new Promise<void>((resolve, reject) => {
      const rl = readline.createInterface({ input: p.stdout });
      rl.on('line', (line) => {
        if (line === 'ready') resolve();
        else u.seen.push(JSON.parse(line));
      });
      p.once('exit', (code) => reject(new Error(`dns upstream in ${ns} exited (${code})`)));
    });
    return u;
  }
}

/** Polls `fn` until it returns true (every 20 ms, at most `ms`): for conditions that settle, never for timing. */
export async function until(fn: () => Promise<boolean> | boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
}
