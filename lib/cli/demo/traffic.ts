/**
 * Real traffic for the demo: small node servers and clients started inside the demo's
 * namespaces with `nsenter --net=PATH` (a demo is not the library: it may spawn). A server
 * answers each TCP connection with its tag and the client's address as it sees it, so a client
 * learns both who answered and whether NAT rewrote its source.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { NETNS_DIR } from '../../netns';
import type { World } from './world';

const nsPath = (ns: string): string => (ns.includes('/') ? ns : path.join(NETNS_DIR, ns));

/** Starts a TCP server in `ns` on `port` (every address); resolves once it listens. */
export async function serve(world: World, ns: string, port: number, tag: string): Promise<void> {
  const code = `
    const s = require('net').createServer((c) => c.end(${JSON.stringify(tag)} + ' ' + c.remoteAddress.replace(/^::ffff:/, '')));
    s.on('error', (e) => { console.error(e.message); process.exit(2); });
    s.listen(${port}, () => console.log('ready'));
    // Never outlive the demo: leave when it dies (even by kill -9) and after two minutes anyway.
    // (nsenter executes node in place: its parent is the demo, whose pid is fixed here so that a
    // demo killed before this line runs is noticed too.)
    setInterval(() => { if (process.ppid !== ${process.pid}) process.exit(0); }, 200).unref();
    setTimeout(() => process.exit(0), 120000).unref();`;
  const p = world.track(spawn('nsenter', [`--net=${nsPath(ns)}`, '--', process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let err = '';
  p.stderr!.on('data', (d) => {
    err += String(d);
  });
  const ok = await new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(false), 10000);
    p.stdout!.once('data', () => {
      clearTimeout(t);
      resolve(true);
    });
    p.once('exit', () => {
      clearTimeout(t);
      resolve(false);
    });
    p.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
  if (!ok) throw new Error(`the server ${tag} in ${ns} did not start${err ? `: ${err.trim()}` : ''}`);
}

/**
 * What a TCP client in `ns` hears from addr:port: the server's answer, or '' when nothing
 * answers within `timeoutMs` (refused, unreachable or silently dropped).
 */
export async function ask(world: World, ns: string, addr: string, port: number, timeoutMs = 2000): Promise<string> {
  const code = `
    const c = require('net').connect(${port}, ${JSON.stringify(addr)});
    let d = ''; c.on('data', (x) => { d += x; });
    c.on('end', () => { process.stdout.write(d); process.exit(0); });
    c.on('error', () => process.exit(0));
    setTimeout(() => process.exit(0), ${timeoutMs});`;
  const p = world.track(spawn('nsenter', [`--net=${nsPath(ns)}`, '--', process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'ignore'] }));
  let out = '';
  p.stdout!.on('data', (d) => {
    out += String(d);
  });
  await new Promise<void>((resolve) => {
    p.once('exit', () => resolve());
    p.once('error', () => resolve());
  });
  return out.trim();
}
