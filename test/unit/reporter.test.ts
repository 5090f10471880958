/**
 * scripts/mocha-reporter.js on a small suite run in a child process: a skip is reported as a
 * skip with its reason (given through test/helpers/skip.ts), never counted as a pass, and the
 * last line stays `N passed, N failed[, N skipped]`.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..', '..');
const REPORTER = path.join(ROOT, 'scripts', 'mocha-reporter.js');
const SKIP_HELPER = path.join(__dirname, '..', 'helpers', 'skip.js');

function runSuite(body: string): { out: string; status: number | null } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-reporter-'));
  try {
    const file = path.join(dir, 'suite.test.js');
    fs.writeFileSync(file, `const { skipBecause } = require(${JSON.stringify(SKIP_HELPER)});\n${body}\n`);
    const script = `
      const Mocha = require(${JSON.stringify(path.join(ROOT, 'node_modules', 'mocha'))});
      const m = new Mocha({ reporter: ${JSON.stringify(REPORTER)}, color: false });
      m.addFile(${JSON.stringify(file)});
      m.run((failures) => { process.exitCode = failures ? 1 : 0; });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
    return { out: r.stdout, status: r.status };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const lastLine = (out: string): string => out.trimEnd().split('\n').pop() ?? '';

describe('mocha reporter', () => {
  it('reports skips as skipped, with their reasons, apart from passes', () => {
    const { out, status } = runSuite(`
      describe('outer', () => {
        it('passes', () => {});
        it('skips itself', function () { skipBecause(this, 'the kernel has no widget links'); });
        describe('inner', () => {
          beforeEach(function () { skipBecause(this, 'no gadget either'); });
          it('is skipped by its hook', () => { throw new Error('never runs'); });
        });
        it.skip('is skipped without a reason', () => {});
      });`);
    assert.equal(status, 0, out);
    assert.equal(lastLine(out), '1 passed, 0 failed, 3 skipped');
    assert.match(lastLine(out), /^[0-9]+ passed, [0-9]+ failed/);
    assert.match(out, /- skips itself\n\s+skipped: the kernel has no widget links\n/);
    assert.match(out, /- is skipped by its hook\n\s+skipped: no gadget either\n/);
    assert.match(
      out,
      /skipped \(3\):\n {2}- outer skips itself: the kernel has no widget links\n {2}- outer is skipped without a reason: \(no reason given\)\n {2}- outer inner is skipped by its hook: no gadget either\n/,
    );
    assert.doesNotMatch(out, /never runs/);
  });

  it('keeps the summary of a run without skips as it was', () => {
    const { out, status } = runSuite(`it('passes', () => {}); it('fails', () => { throw new Error('boom'); });`);
    assert.equal(status, 1);
    assert.equal(lastLine(out), '1 passed, 1 failed');
    assert.doesNotMatch(out, /skipped/);
  });
});
