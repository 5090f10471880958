/**
 * Runs the real `nsnet` executable (bin/nsnet) as a process, the way users and scripts do.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { removeStateDir } from '../helpers/cni';
import { registerCleanup } from '../helpers/sandbox';

export const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'nsnet');

export interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `nsnet ARGS` with the given environment additions; waits for it. Without NSNET_CNI_SOCKET in
 * `env` it is `none`: a connect on a network with DNS then asks no daemon to serve the names
 * (test/cli/dns.test.ts gives each test a socket of its own), so that one test's daemon does not
 * follow the state directories of the others.
 */
export function nsnet(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30000): Result {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, NSNET_CNI_SOCKET: 'none', ...env }, timeout: timeoutMs });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A state directory of its own (removed after the test or describe that made it). */
export function stateDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-cli-'));
  registerCleanup(() => removeStateDir(dir), `rm ${dir}`); // a daemon may follow it (test/cli/dns.test.ts)
  return dir;
}

/** A CLI bound to one state dir and host namespace: `--state-dir D --host-netns H ARGS`. */
export function cli(dir: string, hostNs: string): (args: string[]) => Result {
  return (args) => nsnet(['--state-dir', dir, '--host-netns', hostNs, ...args]);
}

/** Asserts success and returns stdout parsed as JSON. */
export function json(r: Result): any {
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
  assert.equal(r.stderr, '', 'nothing on stderr');
  return JSON.parse(r.stdout);
}

/**
 * Asserts a failure: exactly one stderr line `nsnet: CODE: …`, the exit status, and — when the
 * run had --json — the error document on stdout.
 */
export function fails(r: Result, code: string, status: number): { code: string; message: string; details: Record<string, unknown> } | undefined {
  assert.equal(r.status, status, `expected exit ${status} (${code}), got ${r.status}: ${r.stderr}${r.stdout}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.match(lines[lines.length - 1]!, new RegExp(`^nsnet: ${code}: \\S`), r.stderr);
  if (!r.stdout.trim().startsWith('{')) return undefined;
  const doc = JSON.parse(r.stdout);
  assert.equal(doc.error.code, code);
  assert.equal(`nsnet: ${doc.error.code}: ${doc.error.message}`, lines[lines.length - 1]);
  assert.equal(typeof doc.error.details, 'object');
  return doc.error;
}
