#!/usr/bin/env node
'use strict';
// The kernel test tier against the addon built with AddressSanitizer and UBSan.
//
//   node scripts/asan.js build                  compile build/asan/nsnet.node
//   node scripts/asan.js test [TEST ARGS...]    build, then run `node scripts/test.js kernel`
//                                               (or TEST ARGS) against it; exits with the
//                                               tier's status, or 1 on any sanitizer report
//
// `test` runs the tests in the current namespace, so it must itself run inside the test
// sandbox: `node scripts/sandbox.js -- node scripts/asan.js test` (test/unit/asan.test.ts
// runs it from `npm test`, already in the sandbox; it never re-enters one).
//
// How: the addon's sources (binding.gyp) are compiled by g++ with
// -fsanitize=address,undefined and the defines node-gyp uses, and linked into
// build/asan/nsnet.node. Node itself is not instrumented, so the ASan runtime must be loaded
// before anything else: the tier runs with LD_PRELOAD=<gcc's libasan.so> (libubsan comes in as
// a dependency of the addon), and with NSNET_ADDON pointing lib/native.ts at the sanitized
// build. The programs the tests start do not inherit either (scripts/asan-child.js says why),
// except the child processes of test/kernel/release.test.ts, which put them back.
//
// Options, and why:
//   ASAN_OPTIONS detect_leaks=0  Node and V8 do not free everything before exit (isolates,
//                                the platform's threads, process.exit() skips destructors),
//                                so LeakSanitizer would drown a real report in theirs. Handle
//                                and thread leaks are tested by counting /proc/self/fd and
//                                /proc/self/task instead (test/kernel/release.test.ts).
//                abort_on_error=1  a report kills the process at once (no test can pass after)
//                log_path=DIR/asan every process writes its reports to DIR/asan.PID, so one
//                                in a child (release.test.ts's scenarios) is seen even when
//                                the test swallowed its stderr; any such file fails the run
//   UBSAN_OPTIONS halt_on_error=1:print_stacktrace=1, same log_path (the addon is also built
//                with -fno-sanitize-recover=all)

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, spawnSync } = require('child_process');
const { ROOT, compileAll, gypTarget, mtime, newestHeader, objectFile, run, stale, symbolizer } = require('./native-build.js');

const OUT = path.join(ROOT, 'build', 'asan');
const CXX = process.env.NSNET_ASAN_CXX || 'g++';

function runtime(name) {
  const r = spawnSync('gcc', [`-print-file-name=${name}`], { encoding: 'utf8' });
  const p = (r.stdout || '').trim();
  if (r.status !== 0 || !path.isAbsolute(p) || !fs.existsSync(p)) throw new Error(`gcc cannot find ${name} (Debian: libasan8 and libubsan1 come with g++)`);
  return fs.realpathSync(p);
}

function nodeHeaders() {
  for (const d of [path.join(path.dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node']) {
    if (fs.existsSync(path.join(d, 'node_api.h'))) return path.resolve(d);
  }
  throw new Error("node's headers (node_api.h) not found next to node or in /usr/include/node");
}

/** Compiles build/asan/nsnet.node (only what changed). Returns its path. */
async function build({ log = () => {} } = {}) {
  const t = gypTarget('nsnet');
  const addonApi = require('node-addon-api').include_dir.replace(/^"|"$/g, '');
  // node-gyp's defines for this target, plus binding.gyp's own; RTTI stays on (node-gyp's
  // -fno-rtti would switch UBSan's vptr check off).
  const defs = [
    'NODE_GYP_MODULE_NAME=nsnet',
    'USING_UV_SHARED=1',
    'USING_V8_SHARED=1',
    'V8_DEPRECATION_WARNINGS=1',
    '_GLIBCXX_USE_CXX11_ABI=1',
    '_FILE_OFFSET_BITS=64',
    '_LARGEFILE_SOURCE',
    '__STDC_FORMAT_MACROS',
    'BUILDING_NODE_EXTENSION',
    ...(t.defines || []),
  ];
  const flags = [
    '-std=c++17',
    '-Wall',
    '-Wextra',
    '-Werror',
    '-fexceptions',
    '-fPIC',
    '-pthread',
    '-g',
    '-O1',
    '-fno-omit-frame-pointer',
    '-fsanitize=address,undefined',
    '-fno-sanitize-recover=all',
    ...defs.map((d) => `-D${d}`),
    `-I${nodeHeaders()}`,
    `-I${path.resolve(ROOT, addonApi)}`,
  ];
  const objDir = path.join(OUT, 'obj');
  fs.mkdirSync(objDir, { recursive: true });
  const hdr = newestHeader(__filename);
  const jobs = [];
  const objects = [];
  for (const src of t.sources) {
    const obj = objectFile(objDir, src);
    objects.push(obj);
    if (mtime(obj) < Math.max(hdr, mtime(path.join(ROOT, src)))) jobs.push([...flags, '-c', src, '-o', obj]);
  }
  const addon = path.join(OUT, 'nsnet.node');
  const t0 = Date.now();
  await compileAll(CXX, jobs, { what: 'ASan build' });
  if (jobs.length || stale(addon, ...objects)) {
    const r = await run(CXX, ['-shared', '-pthread', '-fsanitize=address,undefined', '-o', addon, ...objects]);
    if (r.code !== 0) throw new Error(`ASan link failed:\n${r.out}`);
    log(`asan: compiled ${jobs.length} files and linked ${path.relative(ROOT, addon)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  return addon;
}

/** The environment that runs node against the sanitized addon; reports go to `logDir`. */
function sanitizerEnv(addon, logDir) {
  const preload = [runtime('libasan.so'), process.env.LD_PRELOAD].filter(Boolean).join(':');
  return {
    ...process.env,
    LD_PRELOAD: preload,
    NSNET_ADDON: addon,
    ...symbolizer(),
    ASAN_OPTIONS: `detect_leaks=0:abort_on_error=1:halt_on_error=1:log_path=${logDir}/asan`,
    UBSAN_OPTIONS: `halt_on_error=1:print_stacktrace=1:log_path=${logDir}/ubsan`,
  };
}

/** Sanitizer report files written under `logDir`: [{ file, text }]. */
function reports(logDir) {
  let files;
  try {
    files = fs.readdirSync(logDir);
  } catch {
    return [];
  }
  return files.map((f) => ({ file: path.join(logDir, f), text: fs.readFileSync(path.join(logDir, f), 'utf8') }));
}

/**
 * Builds, then runs `node scripts/test.js ...testArgs` with the sanitized addon, streaming its
 * output to `onOutput`. Returns { code, signal, passed, failed, reports, seconds, logDir }.
 */
async function runTests(testArgs = ['kernel'], { onOutput = (s) => process.stdout.write(s), log = console.log } = {}) {
  const addon = await build({ log });
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-asan-'));
  const env = sanitizerEnv(addon, logDir);
  const t0 = Date.now();
  const child = spawn(process.execPath, ['-r', path.join(__dirname, 'asan-child.js'), path.join(__dirname, 'test.js'), ...testArgs], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const take = (d) => {
    const s = String(d);
    tail = (tail + s).slice(-20000);
    onOutput(s);
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  const { code, signal } = await new Promise((resolve) => child.on('close', (c, s) => resolve({ code: c, signal: s })));
  const m = /^(\d+) passed, (\d+) failed/m.exec(
    tail
      .split('\n')
      .filter((l) => /^\d+ passed, \d+ failed/.test(l))
      .pop() || '',
  );
  return {
    code,
    signal,
    passed: m ? Number(m[1]) : 0,
    failed: m ? Number(m[2]) : NaN,
    reports: reports(logDir),
    seconds: (Date.now() - t0) / 1000,
    logDir,
    tail,
  };
}

async function main(argv) {
  if (argv[0] === 'build') {
    console.log(await build({ log: console.log }));
    return;
  }
  if (argv[0] !== 'test') {
    console.error('usage: node scripts/asan.js build | test [TEST ARGS...]');
    process.exitCode = 2;
    return;
  }
  const args = argv.slice(1);
  const r = await runTests(args.length ? args : ['kernel']);
  for (const rep of r.reports) console.log(`\nsanitizer report ${rep.file}:\n${rep.text}`);
  console.log(`asan: ${r.passed} passed, ${r.failed} failed, ${r.reports.length} sanitizer reports, ${r.seconds.toFixed(0)} s`);
  process.exitCode = r.code === 0 && r.reports.length === 0 ? 0 : 1;
}

module.exports = { build, runTests, sanitizerEnv, reports, OUT };

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e.message || e);
    process.exit(1);
  });
}
