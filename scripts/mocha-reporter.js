'use strict';
// Mocha's Spec output, then one summary line as the very last line:
//   N passed, N failed[, N skipped]
// Pending (skipped) tests are never counted as passed. Failures include hook
// failures (mocha counts a failing before/after hook as a failure).
// A run in which nothing passed or failed is reported as "ran no test".

const Spec = require('mocha/lib/reporters/spec');

function summary(stats) {
  const passed = stats.passes || 0;
  const failed = stats.failures || 0;
  const skipped = stats.pending || 0;
  return `${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : '');
}

class NsnetReporter extends Spec {
  epilogue() {
    super.epilogue();
    const s = this.stats;
    if (!s.passes && !s.failures) process.stdout.write('ran no test\n');
    process.stdout.write(summary(s) + '\n');
  }
}

NsnetReporter.summary = summary;
module.exports = NsnetReporter;
