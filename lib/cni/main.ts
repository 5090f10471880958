/**
 * The plugin as a process, without the daemon: what `nsnet-cni` runs when no daemon answers
 * (native/cni/client.c execs `node dist/lib/cni/main.js` with the same environment and stdin),
 * and what bin/nsnet-cni runs when the native client was not built.
 *
 * Reads the configuration from stdin, serves the request in this process (./plugin.ts run()),
 * prints the result or the CNI error JSON to stdout, and exits 0 or 1.
 */
import * as fs from 'node:fs';
import { run } from './plugin';

/** All of stdin (a pipe, a file or nothing); non-blocking descriptors are waited for. */
async function readStdin(): Promise<string> {
  try {
    return fs.readFileSync(0, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EBADF' || code === 'ENXIO') return ''; // closed
    if (code !== 'EAGAIN') throw e;
  }
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text);
  let at = 0;
  while (at < buf.length) {
    try {
      at += fs.writeSync(fd, buf, at);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
    }
  }
}

async function main(): Promise<void> {
  let stdin: string;
  try {
    stdin = await readStdin();
  } catch (e) {
    const msg = `cannot read stdin: ${(e as Error).message}`;
    writeAll(1, `${JSON.stringify({ cniVersion: '1.1.0', code: 5, msg })}\n`);
    writeAll(2, `nsnet-cni: ${msg}\n`);
    process.exit(1);
  }
  const res = await run(process.env, stdin);
  if (res.stdout) writeAll(1, res.stdout);
  if (res.stderr) writeAll(2, res.stderr);
  process.exit(res.exitCode);
}

void main();
