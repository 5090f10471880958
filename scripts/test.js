#!/usr/bin/env node
'use strict';
// Run the compiled mocha tests. Only ever inside the sandbox:
//   node scripts/sandbox.js -- node scripts/test.js [--grep RE] [--bail] [FILE|DIR|TIER ...]
// With no FILE, runs dist/test/{unit,kernel,e2e,cli,cni,runtimes}/**/*.test.js in that
// order (then any other test dir). A FILE may be given as its TypeScript
// source (test/kernel/links.test.ts) or compiled path; a TIER as `kernel`.

const fs = require('fs');
const path = require('path');
const Mocha = require('mocha');
const { assertInSandbox } = require('./sandbox-guard.js');

const ROOT = path.resolve(__dirname, '..');
const DIST = path.join(ROOT, 'dist', 'test');
const SRC = path.join(ROOT, 'test');
const TIERS = ['unit', 'kernel', 'e2e', 'cli', 'cni', 'runtimes'];
const NOT_TESTS = new Set(['helpers', 'fixtures']);

function fail(msg, code = 2) {
  process.stderr.write(`test: ${msg}\n`);
  process.exit(code);
}

function refuseOutsideSandbox() {
  try {
    assertInSandbox('use `npm test` or `node scripts/sandbox.js -- node scripts/test.js`');
  } catch (err) {
    fail(err.message);
  }
}

function walk(dir) {
  let out = [];
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out = out.concat(walk(p));
    else if (e.name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

// Skip compiled tests whose TypeScript source was deleted (tsc never removes them).
function hasSource(jsFile) {
  if (!fs.existsSync(SRC)) return true;
  const rel = path.relative(DIST, jsFile).replace(/\.js$/, '');
  return ['.ts', '.js'].some((ext) => fs.existsSync(path.join(SRC, rel + ext)));
}

function testsIn(dir) {
  return walk(dir).filter(hasSource);
}

function allTests() {
  let dirs = [];
  try {
    dirs = fs
      .readdirSync(DIST, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
  const extra = dirs.filter((d) => !TIERS.includes(d) && !NOT_TESTS.has(d)).sort();
  const order = TIERS.filter((d) => dirs.includes(d)).concat(extra);
  const top = fs
    .readdirSync(DIST)
    .filter((f) => f.endsWith('.test.js'))
    .map((f) => path.join(DIST, f));
  return order.flatMap((d) => testsIn(path.join(DIST, d))).concat(top.filter(hasSource));
}

// Map a user-given path or tier name to compiled test files.
function resolveArg(arg) {
  if (TIERS.includes(arg) || fs.existsSync(path.join(DIST, arg))) {
    const p = path.join(DIST, arg);
    if (fs.existsSync(p) && fs.statSync(p).isDirectory()) return testsIn(p);
  }
  let p = path.resolve(arg);
  const rel = path.relative(SRC, p);
  if (!rel.startsWith('..') && !path.isAbsolute(rel)) p = path.join(DIST, rel.replace(/\.ts$/, '.js'));
  if (!fs.existsSync(p)) fail(`no compiled test for ${arg} (looked for ${path.relative(ROOT, p)}; run tsc first)`);
  return fs.statSync(p).isDirectory() ? testsIn(p) : [p];
}

function parseArgs(argv) {
  const opts = { grep: undefined, bail: false, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--grep' || a === '-g') {
      if (i + 1 >= argv.length) fail('--grep needs a pattern');
      opts.grep = argv[++i];
    } else if (a.startsWith('--grep=')) opts.grep = a.slice('--grep='.length);
    else if (a === '--bail' || a === '-b') opts.bail = true;
    else if (a === '--') continue;
    else if (a.startsWith('-')) fail(`unknown option ${a} (known: --grep RE, --bail, FILE...)`);
    else opts.files.push(...resolveArg(a));
  }
  return opts;
}

function finish(code) {
  process.exitCode = code;
  // Leaked handles in a broken test must not hang the run: leave once output is flushed.
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

async function main() {
  refuseOutsideSandbox();
  const opts = parseArgs(process.argv.slice(2));
  const files = opts.files.length ? opts.files : allTests();
  if (files.length === 0) {
    process.stdout.write(`ran no test: no compiled test files under ${path.relative(ROOT, DIST)}\n0 passed, 0 failed\n`);
    return finish(1);
  }

  const mocha = new Mocha({
    timeout: 30000,
    reporter: path.join(__dirname, 'mocha-reporter.js'),
    bail: opts.bail,
    color: process.stdout.isTTY,
  });
  if (opts.grep) mocha.grep(opts.grep);
  // Root hooks from the shared helper: per-test scoped teardown plus a final
  // sweep of every namespace/link the run registered.
  const helper = path.join(DIST, 'helpers', 'sandbox.js');
  if (fs.existsSync(helper)) {
    const { mochaHooks } = require(helper);
    if (mochaHooks) mocha.rootHooks(mochaHooks);
  }
  for (const f of files) mocha.addFile(f);

  try {
    await mocha.loadFilesAsync();
  } catch (err) {
    process.stdout.write(`error loading tests: ${(err && err.stack) || err}\n0 passed, 1 failed\n`);
    return finish(1);
  }
  let runner = null;
  runner = mocha.run((failures) => {
    const passes = runner && runner.stats ? runner.stats.passes : 0;
    finish(failures > 0 || !passes ? 1 : 0);
  });
}

main().catch((err) => {
  process.stdout.write(`test runner error: ${(err && err.stack) || err}\n0 passed, 1 failed\n`);
  finish(1);
});
