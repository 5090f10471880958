/** The bench's sandbox check. */
import * as fs from 'node:fs';

/** The inode of the calling thread's network namespace, as a string. */
export function netnsInode(): string {
  return String(fs.statSync('/proc/self/ns/net').ino);
}

/**
 * Refuses to go on unless we run inside the sandbox of scripts/sandbox.js, which sets
 * NSNET_SANDBOX to the inode of its private network namespace.
 */
export function assertSandbox(): void {
  if (process.env.NSNET_SANDBOX !== netnsInode()) {
    process.stderr.write(
      'bench: refusing to run outside the private network namespace of the sandbox (NSNET_SANDBOX does not\n' +
        "       name this network namespace). The benchmarks create and delete thousands of links; they must\n" +
        "       never run in the machine's own namespace. Run them with:  npm run bench [-- SUITE...]\n",
    );
    process.exit(2);
  }
}
