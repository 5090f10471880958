'use strict';
// What the scripts that compile the native sources outside node-gyp share (scripts/asan.js:
// the addon under ASan/UBSan; scripts/fuzz.js: the decoder under libFuzzer): the addon's
// sources from binding.gyp, rebuild-if-newer checks, a process runner that collects output,
// and a small compile pool. Not a build system: each script still says what it compiles and
// with which flags.

const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
const NATIVE = path.join(ROOT, 'native');

/** A target of binding.gyp (default: the addon, `nsnet`). */
function gypTarget(name = 'nsnet') {
  // binding.gyp is plain JSON here (gyp also allows comments and trailing commas: strip them).
  const text = fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, '');
  const target = JSON.parse(text.replace(/,(\s*[\]}])/g, '$1')).targets.find((t) => t.target_name === name);
  if (!target) throw new Error(`binding.gyp has no target ${name}`);
  return target;
}

/** Modification time in ms; 0 when the file does not exist (so it counts as out of date). */
function mtime(p) {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return 0;
  }
}

/** Every header under native/. */
function headers() {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.h')) out.push(p);
    }
  };
  walk(NATIVE);
  return out;
}

/**
 * The newest mtime among the native headers and `also` (the calling script: a change of its
 * flags rebuilds everything). Any object older than this is recompiled: no dependency scan.
 */
function newestHeader(...also) {
  return Math.max(0, ...headers().map(mtime), ...also.map(mtime));
}

/** The object file of `src` (a path under native/, relative to the root) in `objDir`. */
function objectFile(objDir, src) {
  return path.join(objDir, src.replace(/^native\//, '').replace(/[/.]/g, '_') + '.o');
}

/** Whether `out` is older than any of `inputs` (or missing). */
function stale(out, ...inputs) {
  return mtime(out) < Math.max(...inputs.map(mtime));
}

/**
 * Runs a process in the package root to completion, stdout and stderr collected together.
 * Never rejects: resolves { code, signal, out } (code 127 when it could not start).
 */
function run(cmd, args, opts = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', (e) => resolve({ code: 127, signal: null, out: String(e) }));
    child.on('close', (code, signal) => resolve({ code, signal, out }));
  });
}

/**
 * Runs `cxx ARGS` for every ARGS of `jobs`, at most `parallel` at once (the machine has two
 * shared cores). Throws with every failing command line and its output.
 */
async function compileAll(cxx, jobs, { parallel = 2, what = 'build' } = {}) {
  const queue = jobs.slice();
  const errors = [];
  const worker = async () => {
    for (let j = queue.shift(); j; j = queue.shift()) {
      const r = await run(cxx, j);
      if (r.code !== 0) errors.push(`${cxx} ${j.join(' ')}\n${r.out}`);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  if (errors.length) throw new Error(`${what} failed:\n${errors.join('\n')}`);
}

/** llvm-symbolizer of Debian's llvm-14 (sanitizers search only the unversioned name in PATH). */
function symbolizer() {
  for (const p of ['/usr/bin/llvm-symbolizer-14', '/usr/lib/llvm-14/bin/llvm-symbolizer', '/usr/bin/llvm-symbolizer'])
    if (fs.existsSync(p)) return { ASAN_SYMBOLIZER_PATH: p };
  return {};
}

module.exports = { ROOT, NATIVE, gypTarget, mtime, headers, newestHeader, objectFile, stale, run, compileAll, symbolizer };
