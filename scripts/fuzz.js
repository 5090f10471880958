#!/usr/bin/env node
'use strict';
// libFuzzer targets for the netlink decoder (native/fuzz/), built with clang 14 from Debian
// (packages clang-14 and libclang-rt-14-dev) under ASan and UBSan.
//
//   node scripts/fuzz.js build [--selftest]        compile into build/fuzz/
//   node scripts/fuzz.js seeds DIR                  write the seed corpora into DIR/{decode,nft-expr}
//   node scripts/fuzz.js run [--time S] [TARGET...] build, seed and fuzz each target S seconds
//                                                   (default 20; TARGET: decode, nft-expr)
//
// The decoder sources need no privileges and no network namespace, so this runs anywhere;
// test/unit/fuzz.test.ts drives the same functions inside `npm test`.
//
// Layout under build/fuzz/: obj/ (objects, rebuilt when a source or header is newer),
// decode_fuzz, nft_expr_fuzz, decode_fuzz_selftest, corpus/TARGET/ (inputs libFuzzer found
// that add coverage: kept between local runs, empty on a fresh clone), artifacts/ (crashes).

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { NATIVE, ROOT, compileAll, gypTarget, mtime, newestHeader, objectFile, run, symbolizer } = require('./native-build.js');

const OUT = path.join(ROOT, 'build', 'fuzz');
const CXX = process.env.NSNET_FUZZ_CXX || 'clang++-14';

// The N-API-free part of the addon: every source of binding.gyp but the module's glue (addon,
// JS conversion in codec.cc, sockets, namespaces, worker threads, the UDP responder). So a new schema directory
// (say native/xfrm/) is fuzzed as soon as binding.gyp lists it. If one of these ever includes
// napi.h, compiling it here (without node's headers) fails: fix the include structure, never
// stub N-API.
const NAPI_GLUE = /^native\/(addon\.cc|netlink\/codec\.cc|netlink\/socket\.cc|netns\/|udp\/|worker\/)/;
const NAPI_FREE = (src) => !NAPI_GLUE.test(src);

const COMMON = ['-std=c++17', '-Wall', '-Wextra', '-Werror', '-g', '-O1', '-fno-omit-frame-pointer', '-fno-sanitize-recover=all'];
const LIB_FLAGS = [...COMMON, '-fsanitize=fuzzer-no-link,address,undefined'];
const LINK_FLAGS = [...COMMON, '-fsanitize=fuzzer,address,undefined'];

const TARGETS = {
  decode: { src: 'native/fuzz/decode_fuzz.cc', bin: 'decode_fuzz' },
  'nft-expr': { src: 'native/fuzz/nft_expr_fuzz.cc', bin: 'nft_expr_fuzz' },
};

// Kernel names of nf_tables expressions (net/netfilter/nft_*.c): the nft-expr target's
// dictionary. Those with a table in native/nft/ decode to objects, the others stay raw bytes.
const EXPR_NAMES = [
  'payload',
  'cmp',
  'bitwise',
  'range',
  'meta',
  'ct',
  'fib',
  'immediate',
  'lookup',
  'dynset',
  'objref',
  'nat',
  'masq',
  'redir',
  'counter',
  'log',
  'reject',
  'limit',
  'exthdr',
  'quota',
  'numgen',
  'hash',
  'notrack',
  'connlimit',
  'tproxy',
  'socket',
  'xfrm',
  'synproxy',
  'osf',
  'tunnel',
  'queue',
  'dup',
  'fwd',
  'last',
  'inner',
  'byteorder',
  'rt',
];

function librarySources() {
  return gypTarget('nsnet').sources.filter(NAPI_FREE);
}

/** Throws a helpful error when clang 14 or its fuzzer runtime is missing. */
function checkCompiler() {
  const r = spawnSync(CXX, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`${CXX} not found: install the Debian packages clang-14 and libclang-rt-14-dev (.ci/run does)`);
  return r.stdout.split('\n')[0];
}

/**
 * Compiles the decoder and the targets. Returns { decode, 'nft-expr', selftest?, compiled }:
 * binary paths and how many files were compiled (0: everything was up to date).
 */
async function build({ selftest = true, log = () => {} } = {}) {
  checkCompiler();
  const objDir = path.join(OUT, 'obj');
  fs.mkdirSync(objDir, { recursive: true });
  const hdr = newestHeader(__filename);
  const jobs = [];
  const objects = [];
  for (const src of librarySources()) {
    const obj = objectFile(objDir, src);
    objects.push(obj);
    if (mtime(obj) < Math.max(mtime(path.join(ROOT, src)), hdr)) jobs.push([...LIB_FLAGS, '-c', src, '-o', obj]);
  }
  const bins = {};
  const links = [];
  const harness = Object.entries(TARGETS).map(([name, t]) => ({ name, src: t.src, bin: path.join(OUT, t.bin), defs: [] }));
  if (selftest) harness.push({ name: 'selftest', src: TARGETS.decode.src, bin: path.join(OUT, 'decode_fuzz_selftest'), defs: ['-DNSNET_FUZZ_SELFTEST'] });
  for (const h of harness) {
    bins[h.name] = h.bin;
    const deps = [path.join(ROOT, h.src), ...objects];
    if (jobs.length || mtime(h.bin) < Math.max(hdr, ...deps.map(mtime))) links.push([...LINK_FLAGS, ...h.defs, h.src, ...objects, '-o', h.bin]);
  }
  const t0 = Date.now();
  // Two cores, shared: never more than two compilers at once.
  await compileAll(CXX, jobs, { parallel: 2, what: 'fuzz build' });
  await compileAll(CXX, links, { parallel: 2, what: 'fuzz build' });
  if (jobs.length + links.length) log(`fuzz: compiled ${jobs.length} objects and ${links.length} targets in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { ...bins, compiled: jobs.length + links.length };
}

function hexFixtures() {
  const rtnl = JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'rtnl.json'), 'utf8'));
  const kernel = JSON.parse(fs.readFileSync(path.join(NATIVE, 'fuzz', 'seeds', 'kernel.json'), 'utf8'));
  return [
    ...rtnl.fixtures.map((f) => ({ protocol: 0, name: `rtnl-${f.name}`, bytes: Buffer.from(f.hex, 'hex') })),
    ...kernel.seeds.map((s) => ({ protocol: s.protocol, name: s.name, bytes: Buffer.from(s.hex, 'hex') })),
  ];
}

/** Attributes of a nest: [{ type, data }] (type without the NLA_F_* bits). */
function attrs(buf) {
  const out = [];
  for (let off = 0; off + 4 <= buf.length;) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    out.push({ type: buf.readUInt16LE(off + 2) & 0x3fff, data: buf.subarray(off + 4, off + len) });
    off += (len + 3) & ~3;
  }
  return out;
}

// First byte of a decode seed: the protocol (decode_fuzz.cc, kProtocols).
const SELECTOR = { 0: 0, 12: 1, 4: 2, 6: 3 };

/**
 * Writes the seed corpora: DIR/decode (every captured message, alone, and a few multi-message
 * datagrams) and DIR/nft-expr (every expression of every captured rule). Returns the counts.
 */
function writeSeeds(dir) {
  const fx = hexFixtures();
  const decodeDir = path.join(dir, 'decode');
  const exprDir = path.join(dir, 'nft-expr');
  fs.mkdirSync(decodeDir, { recursive: true });
  fs.mkdirSync(exprDir, { recursive: true });
  const put = (d, name, buf) => fs.writeFileSync(path.join(d, name.replace(/[^\w.-]/g, '_')), buf);
  let decode = 0;
  for (const f of fx) {
    put(decodeDir, f.name, Buffer.concat([Buffer.from([SELECTOR[f.protocol]]), f.bytes]));
    decode++;
  }
  // Dumps come as several messages per datagram.
  const groups = {};
  for (const f of fx) (groups[f.name.replace(/-\d+$/, '')] ??= []).push(f);
  for (const [name, list] of Object.entries(groups)) {
    if (list.length < 2) continue;
    put(decodeDir, `multi-${name}`, Buffer.concat([Buffer.from([SELECTOR[list[0].protocol]]), ...list.slice(0, 8).map((f) => f.bytes)]));
    decode++;
  }
  // A protocol without schemas: every message is kept raw.
  put(decodeDir, 'generic-link', Buffer.concat([Buffer.from([4]), fx[0].bytes]));
  decode++;

  const NFTA_RULE_EXPRESSIONS = 4,
    NFTA_LIST_ELEM = 1,
    NFTA_EXPR_NAME = 1,
    NFTA_EXPR_DATA = 2;
  const seen = new Set();
  for (const f of fx) {
    if (f.protocol !== 12 || !f.name.startsWith('nft-rule')) continue;
    const rule = attrs(f.bytes.subarray(20)).find((a) => a.type === NFTA_RULE_EXPRESSIONS);
    for (const el of rule ? attrs(rule.data) : []) {
      if (el.type !== NFTA_LIST_ELEM) continue;
      const parts = attrs(el.data);
      const name = parts.find((a) => a.type === NFTA_EXPR_NAME);
      const data = parts.find((a) => a.type === NFTA_EXPR_DATA);
      if (!name) continue;
      const seed = Buffer.concat([name.data.subarray(0, name.data.indexOf(0) + 1), data ? data.data : Buffer.alloc(0)]);
      const key = seed.toString('hex');
      if (seen.has(key)) continue;
      seen.add(key);
      put(exprDir, `expr-${seen.size}`, seed);
    }
  }
  const dict = path.join(dir, 'nft-expr.dict');
  fs.writeFileSync(dict, EXPR_NAMES.map((n) => `"${n}\\x00"`).join('\n') + '\n');
  return { decode, nftExpr: seen.size, dirs: { decode: decodeDir, 'nft-expr': exprDir }, dicts: { 'nft-expr': dict } };
}

const SANITIZER_ENV = {
  ...symbolizer(),
  // Leaks are errors in the fuzz targets (the decoder owns no memory past a call).
  ASAN_OPTIONS: 'abort_on_error=1:detect_leaks=1:symbolize=1:allocator_may_return_null=1',
  UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
};

/** The `stat::name: value` lines of -print_final_stats=1. */
function parseStats(out) {
  const stats = {};
  for (const m of out.matchAll(/^stat::(\w+):\s+(\d+)/gm)) stats[m[1]] = Number(m[2]);
  return stats;
}

function listFiles(d) {
  try {
    return fs.readdirSync(d);
  } catch {
    return [];
  }
}

/**
 * Runs one fuzz binary for `seconds` over `seedDir` (read only) plus its persistent corpus.
 * Returns { code, signal, out, stats, executions, seconds, corpus, crashes }.
 */
async function fuzz(bin, { name, seconds, seedDir, dict, extra = [] }) {
  const corpus = path.join(OUT, 'corpus', name);
  const artifacts = path.join(OUT, 'artifacts', name);
  fs.mkdirSync(corpus, { recursive: true });
  fs.rmSync(artifacts, { recursive: true, force: true });
  fs.mkdirSync(artifacts, { recursive: true });
  const args = [
    `-max_total_time=${seconds}`,
    '-timeout=10',
    '-rss_limit_mb=2048',
    '-max_len=4096',
    '-print_final_stats=1',
    `-artifact_prefix=${artifacts}/`,
    ...(dict ? [`-dict=${dict}`] : []),
    ...extra,
    corpus,
    seedDir,
  ];
  const t0 = Date.now();
  const r = await run(bin, args, { env: { ...process.env, ...SANITIZER_ENV } });
  const stats = parseStats(r.out);
  return {
    ...r,
    args,
    stats,
    executions: stats.number_of_executed_units ?? 0,
    seconds: (Date.now() - t0) / 1000,
    corpus: listFiles(corpus).length + listFiles(seedDir).length,
    crashes: listFiles(artifacts).map((f) => path.join(artifacts, f)),
  };
}

/** Runs a fuzz binary once on one input file (no fuzzing): { code, signal, out }. */
function runInput(bin, file) {
  return run(bin, [file], { env: { ...process.env, ...SANITIZER_ENV } });
}

async function main(argv) {
  const cmd = argv[0];
  if (cmd === 'build') {
    const b = await build({ selftest: true, log: console.log });
    console.log(JSON.stringify(b, null, 1));
  } else if (cmd === 'seeds') {
    if (!argv[1]) throw new Error('usage: fuzz.js seeds DIR');
    console.log(JSON.stringify(writeSeeds(path.resolve(argv[1])), null, 1));
  } else if (cmd === 'run') {
    let seconds = 20;
    const names = [];
    for (let i = 1; i < argv.length; i++) {
      if (argv[i] === '--time') seconds = Number(argv[++i]);
      else names.push(argv[i]);
    }
    const bins = await build({ selftest: false, log: console.log });
    const seedRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-fuzz-seeds-'));
    process.on('exit', () => fs.rmSync(seedRoot, { recursive: true, force: true }));
    const seeds = writeSeeds(seedRoot);
    let failed = false;
    for (const name of names.length ? names : Object.keys(TARGETS)) {
      if (!TARGETS[name]) throw new Error(`no fuzz target ${name} (known: ${Object.keys(TARGETS).join(', ')})`);
      const r = await fuzz(bins[name], { name, seconds, seedDir: seeds.dirs[name], dict: seeds.dicts[name] });
      console.log(`${name}: exit ${r.code}, ${r.executions} executions in ${r.seconds.toFixed(1)} s, corpus ${r.corpus}, crashes ${r.crashes.length}`);
      if (r.code !== 0 || r.crashes.length) {
        failed = true;
        console.log(r.out.slice(-6000));
      }
    }
    process.exitCode = failed ? 1 : 0;
  } else {
    console.error('usage: node scripts/fuzz.js build | seeds DIR | run [--time S] [TARGET...]');
    process.exitCode = 2;
  }
}

module.exports = { build, writeSeeds, fuzz, runInput, checkCompiler, librarySources, symbolizer, TARGETS, OUT };

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e.message || e);
    process.exit(1);
  });
}
