/**
 * The whole kernel tier once more, against the addon built with AddressSanitizer and UBSan
 * (scripts/asan.js): every test passes and no process wrote a sanitizer report. This file is
 * its own tier (test/native-safety) so that it runs after the plain kernel tier; it is already
 * inside the test sandbox and runs the tier in a child, never through scripts/sandbox.js again.
 * The child's output goes to build/asan/kernel.log; failures and reports are shown here.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..', '..');

interface AsanRun {
  code: number | null;
  signal: string | null;
  passed: number;
  failed: number;
  reports: { file: string; text: string }[];
  seconds: number;
  tail: string;
  logDir: string;
}
interface AsanScript {
  build(o: { log?: (s: string) => void }): Promise<string>;
  runTests(args: string[], o: { onOutput?: (s: string) => void; log?: (s: string) => void }): Promise<AsanRun>;
  sanitizerEnv(addon: string, logDir: string): NodeJS.ProcessEnv;
  OUT: string;
}
const asan = require(path.join(ROOT, 'scripts', 'asan.js')) as AsanScript;

describe('the kernel tier under ASan and UBSan', function () {
  this.timeout(60 * 60 * 1000);
  let addon: string;

  before(async function () {
    if (process.env.NSNET_ADDON) this.skip(); // already the sanitized run: never recurse
    addon = await asan.build({ log: (s) => console.log(`      ${s}`) });
  });

  it('the sanitized addon is what loads: instrumented, with the ASan runtime preloaded', () => {
    const undefinedSyms = execFileSync('nm', ['-D', '--undefined-only', addon], { encoding: 'utf8' });
    assert.match(undefinedSyms, /__asan_report_load/, 'ASan instrumentation');
    assert.match(undefinedSyms, /__ubsan_handle_/, 'UBSan instrumentation');
    const logDir = fs.mkdtempSync(path.join(asan.OUT, 'probe-'));
    // A child with the tier's environment loads lib/native.js and shows what it mapped.
    const r = spawnSync(
      process.execPath,
      [
        '-e',
        `
      const { native } = require(${JSON.stringify(path.join(ROOT, 'dist', 'lib', 'native.js'))});
      native.decode(0, Buffer.alloc(0));
      process.stdout.write(require('fs').readFileSync('/proc/self/maps', 'utf8'));`,
      ],
      { env: asan.sanitizerEnv(addon, logDir), encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.includes(addon), `${addon} is mapped`);
    assert.match(r.stdout, /libasan\.so/);
    assert.doesNotMatch(r.stdout, /build\/Release\/nsnet\.node/);
    fs.rmSync(logDir, { recursive: true, force: true });
  });

  // One exclusion. handles.test.ts "closing with requests in flight ..." asserts a scheduling
  // outcome — that a worker thread has not yet drained 200 requests when the main thread gets
  // one event-loop turn — which the ASan allocator's slower main thread can make false (it
  // failed 1 run in 2 here). The native paths it drives (close() with requests queued and in
  // flight, every promise settling) run under ASan in release.test.ts without that assumption.
  const EXCLUDED = ['closing with requests in flight settles every promise'];
  const grep = `^(?!.*(${EXCLUDED.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')}))`;

  it('every kernel test passes, with no sanitizer report from any process', async () => {
    const logFile = path.join(asan.OUT, 'kernel.log');
    const log = fs.openSync(logFile, 'w');
    let r: AsanRun;
    try {
      r = await asan.runTests(['--grep', grep, 'kernel'], { onOutput: (s) => fs.writeSync(log, s), log: (s) => console.log(`      ${s}`) });
    } finally {
      fs.closeSync(log);
    }
    console.log(
      `      asan kernel tier (${EXCLUDED.length} excluded): ${r.passed} passed, ${r.failed} failed, ${r.reports.length} sanitizer reports in ${r.seconds.toFixed(0)} s (log: ${path.relative(ROOT, logFile)})`,
    );
    const reports = r.reports.map((x) => `${x.file}:\n${x.text.slice(0, 6000)}`).join('\n');
    // The reports are quoted in the failure; nothing is kept in /tmp either way.
    fs.rmSync(r.logDir, { recursive: true, force: true });
    assert.equal(r.reports.length, 0, `sanitizer reports:\n${reports}`);
    assert.equal(r.code, 0, `the kernel tier failed under the sanitizers (exit ${r.code}, ${r.signal ?? 'no signal'}):\n${r.tail.slice(-8000)}`);
    assert.equal(r.failed, 0, r.tail.slice(-8000));
    assert.ok(r.passed > 0, 'tests ran');
  });
});
