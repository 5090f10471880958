'use strict';
// Mocha's Spec output, then one summary line as the very last line:
//   N passed, N failed[, N skipped]
// Pending (skipped) tests are never counted as passed. Failures include hook
// failures (mocha counts a failing before/after hook as a failure).
// A run in which nothing passed or failed is reported as "ran no test".
//
// A skipped test's reason (set by test/helpers/skip.ts as `test.skipReason`)
// is printed under its line, and every skip is listed again, with its reason,
// before the summary.

const Base = require('mocha/lib/reporters/base');
const Spec = require('mocha/lib/reporters/spec');

const NO_REASON = '(no reason given)';

function summary(stats) {
  const passed = stats.passes || 0;
  const failed = stats.failures || 0;
  const skipped = stats.pending || 0;
  return `${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : '');
}

class NsnetReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    this.skips = [];
    // Spec indents by suite depth; follow it (its listeners run before these).
    let depth = 0;
    runner.on('suite', () => depth++);
    runner.on('suite end', () => depth--);
    runner.on('pending', (test) => {
      const reason = test.skipReason || NO_REASON;
      this.skips.push({ title: test.fullTitle(), reason });
      Base.consoleLog(Array(depth).join('  ') + Base.color('pending', `    skipped: ${reason}`));
    });
  }

  epilogue() {
    super.epilogue();
    const s = this.stats;
    if (this.skips.length) {
      process.stdout.write(`skipped (${this.skips.length}):\n`);
      for (const k of this.skips) process.stdout.write(`  - ${k.title}: ${k.reason}\n`);
      process.stdout.write('\n');
    }
    if (!s.passes && !s.failures) process.stdout.write('ran no test\n');
    process.stdout.write(summary(s) + '\n');
  }
}

NsnetReporter.summary = summary;
module.exports = NsnetReporter;
