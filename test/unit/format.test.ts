/**
 * The native sources follow the root .clang-format (Google style, 120 columns), as checked by
 * scripts/format.js with clang-format 14. A missing clang-format-14 is a failure, never a skip
 * (.ci/run installs the Debian package clang-format-14).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..', '..');

interface FormatScript {
  files(): string[];
  check(files?: string[]): { file: string; line: number; column: number }[];
  fix(files?: string[]): void;
  clangFormat(): string;
}
const format = require(path.join(ROOT, 'scripts', 'format.js')) as FormatScript;

describe('native sources: clang-format', () => {
  it('clang-format 14 is installed (Debian package clang-format-14)', () => {
    assert.ok(format.clangFormat());
  });

  it('covers every source the addon and the CNI client are built from', () => {
    const gyp = JSON.parse(fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8')) as { targets: { sources: string[] }[] };
    const listed = new Set(format.files());
    for (const src of gyp.targets.flatMap((t) => t.sources)) assert.ok(listed.has(src), `${src} is checked`);
    assert.ok(
      [...listed].some((f) => f.endsWith('.h')),
      'headers are checked',
    );
  });

  it('every native source is formatted (fix: npm run format)', () => {
    const bad = format.check();
    assert.deepEqual(
      bad.map((b) => `${b.file}:${b.line}:${b.column}`),
      [],
    );
  });

  it('the check finds a misformatted file, and fix() formats it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-format-'));
    try {
      const file = path.join(dir, 'bad.cc');
      fs.writeFileSync(file, 'int  f( ){return 1;}\n');
      const bad = format.check([file]);
      assert.equal(bad.length, 1);
      assert.equal(path.resolve(ROOT, bad[0]!.file), file);
      assert.equal(bad[0]!.line, 1);
      format.fix([file]);
      assert.equal(fs.readFileSync(file, 'utf8'), 'int f() { return 1; }\n');
      assert.deepEqual(format.check([file]), []);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
