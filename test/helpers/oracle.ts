// Oracles independent of the code under test: iproute2, bridge, nft,
// conntrack, and process introspection through /proc.

import { execFileSync } from 'child_process';
import * as fs from 'fs';

export interface ShOptions {
  input?: string | Buffer;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

function exec(cmd: string, args: string[], opts: ShOptions = {}): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      input: opts.input,
      timeout: opts.timeoutMs ?? 20000,
      env: opts.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string; status?: number | null; signal?: string | null };
    const why = e.code === 'ENOENT' ? 'not installed' : String(e.stderr || '').trim() || e.message;
    const wrapped = new Error(`${cmd} ${args.join(' ')}: ${why}`) as Error & { status?: number | null; stderr?: string };
    wrapped.status = e.status;
    wrapped.stderr = e.stderr;
    throw wrapped;
  }
}

function parseJson(cmd: string, args: string[], out: string): any {
  const text = out.trim();
  if (text === '') return [];
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${cmd} ${args.join(' ')}: unparsable JSON (${(err as Error).message}): ${text.slice(0, 200)}`, { cause: err });
  }
}

/** `ip -j [-n NETNS] ...args`, parsed; empty output is []. */
export function ipJson(args: string[], netns?: string): any {
  const full = ['-j', ...(netns ? ['-n', netns] : []), ...args];
  return parseJson('ip', full, exec('ip', full));
}

/** `bridge -j [-n NETNS] ...args` (e.g. ['fdb', 'show', 'br', 'br0']), parsed; empty output is []. */
export function bridgeJson(args: string[], netns?: string): any {
  const full = ['-j', ...(netns ? ['-n', netns] : []), ...args];
  return parseJson('bridge', full, exec('bridge', full));
}

/** Run a command (inside NETNS via `ip netns exec` when given); returns stdout, throws with stderr on failure. */
export function sh(cmd: string, args: string[] = [], netns?: string, opts: ShOptions = {}): string {
  return netns ? exec('ip', ['netns', 'exec', netns, cmd, ...args], opts) : exec(cmd, args, opts);
}

/** `nft -j list ruleset` in NETNS (or here): the parsed object, `{ nftables: [...] }`. */
export function nftJson(netns?: string): any {
  const out = sh('nft', ['-j', 'list', 'ruleset'], netns);
  const parsed = parseJson('nft', ['-j', 'list', 'ruleset'], out);
  return Array.isArray(parsed) ? { nftables: parsed } : parsed;
}

/** Objects of one kind ('table', 'chain', 'rule', 'set', 'element', ...) from nftJson(). */
export function nftObjects(kind: string, netns?: string): any[] {
  const list: any[] = nftJson(netns).nftables ?? [];
  return list.filter((o) => o && typeof o === 'object' && kind in o).map((o) => o[kind]);
}

/** `conntrack -L [...args]` in NETNS: one string per entry (the summary on stderr is dropped). */
export function conntrackList(netns?: string, args: string[] = []): string[] {
  return sh('conntrack', ['-L', ...args], netns)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/** Number of open file descriptors of this process. */
export function countFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** Number of threads of this process (`Threads:` in /proc/self/status). */
export function countThreads(): number {
  const m = /^Threads:\s*(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error('no Threads: line in /proc/self/status');
  return Number(m[1]);
}
