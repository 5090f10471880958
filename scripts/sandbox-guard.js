'use strict';
// The one answer to "are we inside the test sandbox?", for everything that may only run
// there: scripts/sandbox.js (to run a command directly when already inside), scripts/test.js,
// the test helpers (test/helpers/sandbox.ts) and the benchmarks (bench/common/guard.ts).
//
// Inside means both:
//   - NSNET_SANDBOX names the inode of this process's network namespace (scripts/sandbox.js
//     sets it in its private namespace), and
//   - the marker file /run/nsnet-sandbox holds that same inode. scripts/sandbox.js writes it
//     into the private /run it mounts, so it is never there in the machine's own /run: a
//     process that inherited NSNET_SANDBOX but runs in another namespace (or was handed the
//     variable by hand) is refused.
// Plain JavaScript, so that the scripts can require it before anything is compiled; TypeScript
// gets its types from sandbox-guard.d.ts.

const fs = require('fs');

const MARKER = '/run/nsnet-sandbox';

/** The inode of this process's network namespace, as a string. */
function netnsInode() {
  return String(fs.statSync('/proc/self/ns/net').ino);
}

/** Why this process is not inside the sandbox, or null when it is. */
function outsideReason() {
  const ino = netnsInode();
  const env = process.env.NSNET_SANDBOX;
  if (env !== ino) return `NSNET_SANDBOX is ${env === undefined ? 'unset' : env}, this network namespace is ${ino}`;
  let marker;
  try {
    marker = fs.readFileSync(MARKER, 'utf8').trim();
  } catch {
    return `NSNET_SANDBOX names this network namespace (${ino}) but there is no ${MARKER}`;
  }
  if (marker !== ino) return `${MARKER} says ${marker}, this network namespace is ${ino}`;
  return null;
}

/** Whether this process runs inside the sandbox made by scripts/sandbox.js. */
function inSandbox() {
  return outsideReason() === null;
}

/**
 * Throws unless inside the sandbox. The message says why, and `how` says how to get in
 * (default: run it through scripts/sandbox.js).
 */
function assertInSandbox(how = 'run through `node scripts/sandbox.js -- CMD`') {
  const why = outsideReason();
  if (why !== null) {
    throw new Error(`not inside the nsnet test sandbox (${why}); refusing to touch the machine's own network namespace: ${how}`);
  }
}

module.exports = { MARKER, netnsInode, outsideReason, inSandbox, assertInSandbox };
