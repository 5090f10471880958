// Test-side sandbox helpers: unique names, namespaces/links registered for
// teardown, and scoped cleanup that runs even when a test fails.
//
// Usage in a test file (call useSandbox() FIRST in the describe, before the
// file's own hooks, so its teardown runs after theirs):
//
//   import { useSandbox, makeNetns, registerLink, uniqueName } from '../helpers/sandbox';
//   describe('links', () => {
//     useSandbox();
//     let ns: string;
//     before(async () => { ns = await makeNetns('lk'); });   // lives for the whole describe
//     it('adds a veth', async () => {
//       const a = uniqueName('va');                           // ≤ 15 bytes
//       registerLink(a);                                       // deleted after this test
//       ...
//     });
//   });
//
// Scopes: whatever is registered inside a test (or a beforeEach) is torn down
// after that test; whatever is registered in a describe's before() is torn
// down in that describe's after() when it called useSandbox(), else at the end
// of the run. scripts/test.js installs `mochaHooks` as root hooks, so per-test
// teardown happens even in files that never call useSandbox().

import { execFile } from 'child_process';
import * as path from 'path';
import type * as SandboxGuard from '../../scripts/sandbox-guard';

// The sandbox check shared with scripts/ and bench/ (plain JS: loaded from the package root,
// dist/test/helpers being three levels below it).
const guard = require(path.join(__dirname, '..', '..', '..', 'scripts', 'sandbox-guard.js')) as typeof SandboxGuard;

export const SANDBOX_MARKER = guard.MARKER;

type Resource = { kind: 'netns'; name: string } | { kind: 'link'; name: string; netns?: string } | { kind: 'fn'; label: string; fn: () => unknown };

export interface Scope {
  readonly items: Resource[];
}

const base: Scope = { items: [] };
const stack: Scope[] = [base];

/** Inode of the current network namespace, as a string. */
export const netnsInode: () => string = guard.netnsInode;

/** Throws unless we run inside the private namespace made by scripts/sandbox.js. */
export function assertInSandbox(): void {
  guard.assertInSandbox('run through scripts/sandbox.js');
}

let counter = 0;
const pidTag = (process.pid % 1296).toString(36).padStart(2, '0');

/**
 * A short name unique within this run: prefix + 2-char pid tag + base36
 * counter, at most 15 bytes (IFNAMSIZ-1), so it is valid as an interface,
 * netns or nft table name. Long prefixes are truncated.
 */
export function uniqueName(prefix = 't'): string {
  if (!/^[A-Za-z0-9_-]*$/.test(prefix)) throw new Error(`uniqueName: bad prefix ${JSON.stringify(prefix)}`);
  const suffix = pidTag + (counter++).toString(36);
  return prefix.slice(0, Math.max(0, 15 - suffix.length)) + suffix;
}

function run(cmd: string, args: string[]): Promise<{ ok: boolean; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8' }, (err, _stdout, stderr) => {
      resolve({ ok: !err, stderr: String(stderr || (err && err.message) || '').trim() });
    });
  });
}

function top(): Scope {
  return stack[stack.length - 1];
}

/** Register a named netns for teardown (`ip netns del`). */
export function registerNetns(name: string): void {
  top().items.push({ kind: 'netns', name });
}

/** Register a link for teardown (`ip [-n NETNS] link del NAME`). Deleting one end of a veth removes both. */
export function registerLink(name: string, netns?: string): void {
  top().items.push({ kind: 'link', name, netns });
}

/** Register any teardown step (kill a server, remove a temp dir...). Runs LIFO with the rest. */
export function registerCleanup(fn: () => unknown, label = 'cleanup'): void {
  top().items.push({ kind: 'fn', label, fn });
}

/** Create a named network namespace (`ip netns add`), lo up, registered for teardown. */
export async function makeNetns(prefix = 'ns', opts: { loUp?: boolean } = {}): Promise<string> {
  assertInSandbox();
  const name = uniqueName(prefix);
  const r = await run('ip', ['netns', 'add', name]);
  if (!r.ok) throw new Error(`ip netns add ${name}: ${r.stderr}`);
  registerNetns(name);
  if (opts.loUp !== false) {
    const up = await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    if (!up.ok) throw new Error(`ip -n ${name} link set lo up: ${up.stderr}`);
  }
  return name;
}

/** Run fn with a fresh namespace that is deleted afterwards, whatever happens. */
export async function withNetns<T>(fn: (netns: string) => T | Promise<T>, prefix = 'ns'): Promise<T> {
  const scope = pushScope();
  try {
    return await fn(await makeNetns(prefix));
  } finally {
    await popScope(scope);
  }
}

const GONE = /No such file|Cannot find device|does not exist|Cannot open network namespace|not found/i;

async function release(r: Resource): Promise<string | null> {
  try {
    if (r.kind === 'fn') {
      await r.fn();
      return null;
    }
    const args = r.kind === 'netns' ? ['netns', 'del', r.name] : [...(r.netns ? ['-n', r.netns] : []), 'link', 'del', r.name];
    const res = await run('ip', args);
    return res.ok || GONE.test(res.stderr) ? null : `ip ${args.join(' ')}: ${res.stderr}`;
  } catch (err) {
    return `${r.kind === 'fn' ? r.label : r.name}: ${err instanceof Error ? err.message : String(err)}`;
  }
}

async function drain(scopes: Scope[]): Promise<void> {
  const errors: string[] = [];
  for (const s of scopes.reverse()) {
    while (s.items.length) {
      const e = await release(s.items.pop() as Resource);
      if (e) errors.push(e);
    }
  }
  if (errors.length) throw new Error(`teardown failed:\n  ${errors.join('\n  ')}`);
}

/** Open a teardown scope; popScope(scope) releases it and anything opened after it. */
export function pushScope(): Scope {
  const s: Scope = { items: [] };
  stack.push(s);
  return s;
}

export async function popScope(scope: Scope | undefined): Promise<void> {
  if (!scope) return;
  const i = stack.indexOf(scope);
  if (i <= 0) return; // already released (or the base scope: see cleanupAll)
  await drain(stack.splice(i));
}

/** Release every registered namespace, link and cleanup step, in every scope. Ignores already-gone ones. */
export async function cleanupAll(): Promise<void> {
  await drain(stack.splice(1).concat([base]));
}

/**
 * Install teardown hooks in the calling describe (or at a file's top level):
 * resources registered in its before() go in after(), those registered in a
 * test or beforeEach go right after that test, even on failure.
 */
export function useSandbox(): void {
  let suite: Scope | undefined;
  let test: Scope | undefined;
  before(function () {
    assertInSandbox();
    suite = pushScope();
  });
  beforeEach(function () {
    test = pushScope();
  });
  afterEach(async function () {
    await popScope(test);
  });
  after(async function () {
    await popScope(suite);
  });
}

const rootTests: Scope[] = [];

/** Root hooks, installed by scripts/test.js for every run. */
export const mochaHooks = {
  beforeAll(): void {
    assertInSandbox();
  },
  beforeEach(): void {
    rootTests.push(pushScope());
  },
  async afterEach(): Promise<void> {
    await popScope(rootTests.pop());
  },
  async afterAll(): Promise<void> {
    await cleanupAll();
  },
};
