/**
 * Real traffic between namespaces a test made: a TCP server in one, a client in another.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { registerCleanup } from './sandbox';

/** Whether a TCP client in `clientNs` gets "pong" from a server in `serverNs` at addr:port. */
export async function tcpReach(serverNs: string, clientNs: string, addr: string, port = 5555, timeoutMs = 2000): Promise<boolean> {
  // The server listens on every address (dual stack), so a failure is about reachability.
  const server = spawn(
    'ip',
    [
      'netns',
      'exec',
      serverNs,
      process.execPath,
      '-e',
      `
    const s = require('net').createServer((c) => c.end('pong\\n'));
    s.on('error', (e) => { console.error(e.message); process.exit(2); });
    s.listen(${port}, '::', () => console.log('ready'));
    setTimeout(() => process.exit(0), ${timeoutMs + 3000});`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  try {
    const ready = await new Promise<boolean>((resolve) => {
      server.stdout.once('data', () => resolve(true));
      server.once('exit', () => resolve(false));
    });
    if (!ready) return false;
    const client = spawnSync(
      'ip',
      [
        'netns',
        'exec',
        clientNs,
        process.execPath,
        '-e',
        `
      const c = require('net').connect(${port}, ${JSON.stringify(addr)});
      let d = ''; c.on('data', (x) => { d += x; });
      c.on('end', () => process.exit(d === 'pong\\n' ? 0 : 3));
      c.on('error', () => process.exit(2));
      setTimeout(() => process.exit(4), ${timeoutMs});`,
      ],
      { encoding: 'utf8', timeout: timeoutMs + 3000 },
    );
    return client.status === 0;
  } finally {
    server.kill();
  }
}

/** Starts a server in `ns` that answers every TCP connection (or UDP datagram) with its tag and the peer's address. */
export async function server(ns: string, port: number, tag: string, proto: 'tcp' | 'udp' = 'tcp'): Promise<ChildProcess> {
  const code =
    proto === 'tcp'
      ? `require('net').createServer((c) => c.end(${JSON.stringify(tag)} + ' ' + c.remoteAddress.replace('::ffff:', ''))).listen(${port}, () => console.log('ready'))`
      : `const s = require('dgram').createSocket('udp4'); s.on('message', (m, r) => s.send(${JSON.stringify(tag)} + ' ' + r.address, r.port, r.address)); s.bind(${port}, () => console.log('ready'))`;
  const p = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', `${code}; setTimeout(() => process.exit(0), 20000)`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  registerCleanup(() => {
    p.kill();
  });
  await new Promise((r) => p.stdout!.once('data', r));
  return p;
}

/** What a client in `ns` hears from addr:port ('' when nothing answers within a second). */
export function ask(ns: string, addr: string, port: number, proto: 'tcp' | 'udp' = 'tcp'): string {
  const code =
    proto === 'tcp'
      ? `const c = require('net').connect(${port}, ${JSON.stringify(addr)}); let d = ''; c.on('data', (x) => d += x); c.on('end', () => { process.stdout.write(d); process.exit(0); }); c.on('error', () => process.exit(0));`
      : `const s = require('dgram').createSocket('udp4'); s.on('message', (m) => { process.stdout.write(m); process.exit(0); }); s.send('hi', ${port}, ${JSON.stringify(addr)});`;
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', `${code}; setTimeout(() => process.exit(0), 1000)`], {
    encoding: 'utf8',
    timeout: 5000,
  });
  return r.stdout.trim();
}
