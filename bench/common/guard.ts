/**
 * The bench's sandbox check: the one of scripts/sandbox-guard.js (NSNET_SANDBOX names this
 * network namespace and the sandbox's marker file agrees), shared with the test runner.
 */
import * as path from 'node:path';
import type * as SandboxGuard from '../../scripts/sandbox-guard';
import { ROOT } from './paths';

// Plain JS in scripts/ (dist/ holds no copy of it): loaded from the package root.
const guard = require(path.join(ROOT, 'scripts', 'sandbox-guard.js')) as typeof SandboxGuard;

/** The inode of the calling thread's network namespace, as a string. */
export const netnsInode: () => string = guard.netnsInode;

/**
 * Refuses to go on (exit 2) unless we run inside the sandbox of scripts/sandbox.js: the bench
 * creates and deletes thousands of links and must never run in the machine's own namespace.
 */
export function assertSandbox(): void {
  const why = guard.outsideReason();
  if (why === null) return;
  process.stderr.write(
    `bench: refusing to run outside the private network namespace of the sandbox (${why}).\n` +
      "       The benchmarks create and delete thousands of links; they must never run in the machine's own\n" +
      '       namespace. Run them with:  npm run bench [-- SUITE...]\n',
  );
  process.exit(2);
}
