/**
 * Real traffic between namespaces a test made: a TCP server in one, a client in another.
 */
import { spawn, spawnSync } from 'node:child_process';

/** Whether a TCP client in `clientNs` gets "pong" from a server in `serverNs` at addr:port. */
export async function tcpReach(serverNs: string, clientNs: string, addr: string, port = 5555, timeoutMs = 2000): Promise<boolean> {
  // The server listens on every address (dual stack), so a failure is about reachability.
  const server = spawn('ip', ['netns', 'exec', serverNs, process.execPath, '-e', `
    const s = require('net').createServer((c) => c.end('pong\\n'));
    s.on('error', (e) => { console.error(e.message); process.exit(2); });
    s.listen(${port}, '::', () => console.log('ready'));
    setTimeout(() => process.exit(0), ${timeoutMs + 3000});`], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const ready = await new Promise<boolean>((resolve) => {
      server.stdout.once('data', () => resolve(true));
      server.once('exit', () => resolve(false));
    });
    if (!ready) return false;
    const client = spawnSync('ip', ['netns', 'exec', clientNs, process.execPath, '-e', `
      const c = require('net').connect(${port}, ${JSON.stringify(addr)});
      let d = ''; c.on('data', (x) => { d += x; });
      c.on('end', () => process.exit(d === 'pong\\n' ? 0 : 3));
      c.on('error', () => process.exit(2));
      setTimeout(() => process.exit(4), ${timeoutMs});`], { encoding: 'utf8', timeout: timeoutMs + 3000 });
    return client.status === 0;
  } finally {
    server.kill();
  }
}
