/**
 * The TypeScript and JavaScript pass ESLint (eslint.config.mjs) without a warning and are
 * formatted as prettier says (.prettierrc.json): `npm run lint` as a test, so that `npm test` and
 * `.ci/run` fail on what `npm run lint` would. The fix is `npm run format` (prettier) and the
 * message ESLint prints. Both tools are devDependencies: a missing one is a failure, never a skip.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'node_modules', '.bin');

function tool(name: string, args: string[], cwd = ROOT): { status: number | null; out: string } {
  const r = spawnSync(path.join(BIN, name), args, { cwd, encoding: 'utf8', timeout: 120000 });
  if (r.error) throw r.error;
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('TypeScript and JavaScript: ESLint and prettier', function () {
  this.timeout(180000);

  it('ESLint reports nothing (npm run lint)', () => {
    const r = tool('eslint', ['--max-warnings', '0', '.']);
    assert.equal(r.status, 0, r.out);
  });

  it('every file is formatted as prettier says (fix: npm run format)', () => {
    const r = tool('prettier', ['--check', '.']);
    assert.equal(r.status, 0, r.out);
  });

  it('the checks find an unused variable and a misformatted file', () => {
    // Inside the package, so that its eslint.config.mjs and .prettierrc.json apply; removed after.
    const dir = fs.mkdtempSync(path.join(ROOT, 'test', '.lint-probe-'));
    try {
      const file = path.join(dir, 'bad.ts');
      fs.writeFileSync(file, 'export function f(): number {\n  const unused = 1;\n  return  2\n}\n');
      const lint = tool('eslint', ['--max-warnings', '0', path.relative(ROOT, file)]);
      assert.equal(lint.status, 1, lint.out);
      assert.match(lint.out, /'unused' is assigned a value but never used/u);
      const fmt = tool('prettier', ['--check', path.relative(ROOT, file)]);
      assert.equal(fmt.status, 1, fmt.out);
      assert.match(fmt.out, /bad\.ts/u);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('builds and machine-written files are left out of both', () => {
    const ignored = fs.readFileSync(path.join(ROOT, '.prettierignore'), 'utf8').split('\n');
    for (const d of ['dist/', 'build/', 'node_modules/', 'bench/results/']) assert.ok(ignored.includes(d), `.prettierignore names ${d}`);
  });
});
