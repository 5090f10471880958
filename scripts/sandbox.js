#!/usr/bin/env node
'use strict';
// Run a command inside a private network + mount + PID namespace, so that
// nothing it does can touch the machine's own network namespace.
//
//   node scripts/sandbox.js -- CMD ARGS...
//
// Outer step: if NSNET_SANDBOX already names the current netns (and the
// private marker file agrees), run CMD directly. Otherwise re-execute this
// script with --inner under `unshare --net --mount --pid --fork`.
// Inner step (PID 1 of the new namespaces): mount a fresh tmpfs on /run (so
// named namespaces in /run/netns are private), a fresh sysfs on /sys (so
// /sys/class/net shows the sandbox's links), bring lo up, write the marker,
// set NSNET_SANDBOX and run CMD. When the inner step exits, the kernel kills
// every process left in the PID namespace, and the network namespace with all
// its links, and every named namespace bound under the private /run, go away.

const fs = require('fs');
const path = require('path');
const { spawn, spawnSync } = require('child_process');
const { MARKER, inSandbox, netnsInode } = require('./sandbox-guard.js');

const UNSHARE = ['--net', '--mount', '--pid', '--fork', '--mount-proc', '--propagation', 'private'];
const FORWARD = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
const REFUSE =
  'this command needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) to create its private network namespace; ' + "refusing to run in the machine's own namespace";

function die(msg, code) {
  process.stderr.write(`sandbox: ${msg}\n`);
  process.exit(code);
}

// Run cmd with inherited stdio, forward signals to it, and leave with its
// exit status. `asInit`: we are PID 1 of a PID namespace and cannot die by a
// re-raised signal, so report a signal death as 128+signo instead.
function runAndExit(cmd, args, env, asInit, viaUnshare = false) {
  const child = spawn(cmd, args, { stdio: 'inherit', env });
  const handlers = new Map();
  for (const sig of FORWARD) {
    const h = () => {
      // util-linux `unshare --fork` blocks SIGINT/SIGTERM in its own process,
      // so signal the process it forked (the inner step) instead.
      const targets = viaUnshare ? forkedBy(child.pid) : [];
      try {
        if (targets.length === 0) child.kill(sig);
        for (const pid of targets) process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    };
    handlers.set(sig, h);
    process.on(sig, h);
  }
  child.on('error', (err) => die(`cannot run ${cmd}: ${err.message}`, 127));
  child.on('exit', (code, signal) => {
    for (const [sig, h] of handlers) process.removeListener(sig, h);
    if (signal) {
      if (!asInit) {
        process.kill(process.pid, signal);
        return;
      }
      process.exit(128 + (require('os').constants.signals[signal] || 0));
    }
    process.exit(code === null ? 1 : code);
  });
}

function forkedBy(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
    return text.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.error) return r.error.message;
  if (r.status !== 0) return (r.stderr || '').trim() || `${cmd} exited ${r.status}`;
  return null;
}

function inner(cmd) {
  const ino = netnsInode();
  // Only ever act as PID 1 of namespaces that outer() just created: never
  // mount anything over the machine's own /run or /sys.
  const outerNs = process.env.NSNET_OUTER_NETNS;
  if (process.pid !== 1 || !outerNs || outerNs === ino) die('--inner is internal; run: node scripts/sandbox.js -- CMD', 2);
  let err = sh('mount', ['-t', 'tmpfs', '-o', 'mode=0755,nosuid,nodev', 'nsnet-run', '/run']);
  if (err) die(`cannot mount a private /run: ${err}`, 2);
  // Some systems have /var/run as a real directory rather than a link to /run.
  let varRun = '/var/run';
  try {
    varRun = fs.realpathSync('/var/run');
  } catch {
    /* absent */
  }
  if (varRun !== '/run' && fs.existsSync('/var/run')) {
    err = sh('mount', ['-t', 'tmpfs', '-o', 'mode=0755,nosuid,nodev', 'nsnet-varrun', '/var/run']);
    if (err) die(`cannot mount a private /var/run: ${err}`, 2);
    fs.mkdirSync('/var/run/netns', { recursive: true });
  }
  fs.mkdirSync('/run/netns', { recursive: true });
  // A sysfs mounted from inside the new netns shows its links (as `ip netns exec` does).
  err = sh('mount', ['-t', 'sysfs', 'nsnet-sys', '/sys']);
  if (err) process.stderr.write(`sandbox: warning: cannot remount /sys: ${err}\n`);
  err = sh('ip', ['link', 'set', 'lo', 'up']);
  if (err) die(`cannot bring lo up: ${err}`, 2);
  fs.writeFileSync(MARKER, ino + '\n');
  const env = { ...process.env, NSNET_SANDBOX: ino };
  delete env.NSNET_OUTER_NETNS;
  runAndExit(cmd[0], cmd.slice(1), env, true);
}

function outer(cmd) {
  if (inSandbox()) {
    runAndExit(cmd[0], cmd.slice(1), process.env, false);
    return;
  }
  const probe = spawnSync('unshare', [...UNSHARE, '--', 'true'], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    const why = probe.error ? probe.error.message : (probe.stderr || '').trim();
    die(`${REFUSE}${why ? ` (${why})` : ''}`, 2);
  }
  const env = { ...process.env, NSNET_OUTER_NETNS: netnsInode() };
  delete env.NSNET_SANDBOX;
  runAndExit('unshare', [...UNSHARE, '--', process.execPath, path.resolve(__filename), '--inner', '--', ...cmd], env, false, true);
}

function main(argv) {
  let isInner = false;
  if (argv[0] === '--inner') {
    isInner = true;
    argv = argv.slice(1);
  }
  if (argv[0] === '--') argv = argv.slice(1);
  if (argv.length === 0) die('usage: node scripts/sandbox.js -- CMD [ARGS...]', 2);
  if (isInner) inner(argv);
  else outer(argv);
}

main(process.argv.slice(2));
