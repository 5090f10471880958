#!/usr/bin/env node
'use strict';
// clang-format over the native sources (native/**/*.{cc,h,c}), with the style of the root
// .clang-format (Google, 120 columns).
//
//   node scripts/format.js check [FILE...]   lists the files that are not formatted; exits 1 if any
//   node scripts/format.js fix [FILE...]     formats them in place
//
// (npm run format:check / npm run format.) Pinned to clang-format 14, the Debian package
// clang-format-14, because another major version formats some constructs differently and the
// check would then fail on a machine that did nothing wrong. NSNET_CLANG_FORMAT names another
// binary of version 14. test/unit/format.test.ts runs the check in `npm test`.

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
const STYLE = path.join(ROOT, '.clang-format');
const EXTENSIONS = ['.cc', '.h', '.c'];
const VERSION = 14;

/** The native sources, relative to the package root, sorted. */
function files() {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (EXTENSIONS.includes(path.extname(e.name))) out.push(path.relative(ROOT, p));
    }
  };
  walk(path.join(ROOT, 'native'));
  return out.sort();
}

/** The clang-format 14 binary; throws naming the Debian package when there is none. */
function clangFormat() {
  const candidates = process.env.NSNET_CLANG_FORMAT ? [process.env.NSNET_CLANG_FORMAT] : [`clang-format-${VERSION}`, 'clang-format'];
  for (const bin of candidates) {
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
    if (r.error || r.status !== 0) continue;
    const m = /version (\d+)\./.exec(r.stdout);
    if (m && Number(m[1]) === VERSION) return bin;
  }
  throw new Error(`clang-format ${VERSION} not found (tried ${candidates.join(', ')}): install the Debian package clang-format-${VERSION}`);
}

function format(args) {
  const r = spawnSync(clangFormat(), [`--style=file:${STYLE}`, ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return r;
}

/**
 * The files (default: every native source) whose formatting differs from the style, each with
 * the first place it differs: [{ file, line, column }].
 */
function check(list = files()) {
  if (list.length === 0) return [];
  const r = format(['--dry-run', ...list]);
  const bad = new Map();
  for (const m of r.stderr.matchAll(/^(.+?):(\d+):(\d+): (?:warning|error): code should be clang-formatted/gm)) {
    const file = path.relative(ROOT, path.resolve(ROOT, m[1]));
    if (!bad.has(file)) bad.set(file, { file, line: Number(m[2]), column: Number(m[3]) });
  }
  if (r.status !== 0 && bad.size === 0) throw new Error(`clang-format failed: ${r.stderr.trim()}`);
  return [...bad.values()];
}

/** Formats the files (default: every native source) in place. */
function fix(list = files()) {
  if (list.length === 0) return;
  const r = format(['-i', ...list]);
  if (r.status !== 0) throw new Error(`clang-format failed: ${r.stderr.trim()}`);
}

function main(argv) {
  const [cmd, ...list] = argv;
  if (cmd === 'check') {
    const bad = check(list.length ? list : undefined);
    for (const b of bad) console.log(`${b.file}:${b.line}:${b.column}: not formatted`);
    if (bad.length) console.log(`${bad.length} file(s) need formatting: npm run format`);
    process.exitCode = bad.length ? 1 : 0;
  } else if (cmd === 'fix') {
    fix(list.length ? list : undefined);
  } else {
    console.error('usage: node scripts/format.js check|fix [FILE...]');
    process.exitCode = 2;
  }
}

module.exports = { files, check, fix, clangFormat, STYLE };

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    console.error(`format: ${e.message || e}`);
    process.exit(2);
  }
}
