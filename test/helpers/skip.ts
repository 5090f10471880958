// Skipping a test with its reason: skipBecause(this, 'why') marks the running test (or, from
// a beforeEach hook, the test about to run) pending and records the reason where
// scripts/mocha-reporter.js prints it. A skip is never a pass: the reporter counts it apart.
//
//   it('creates an ipvlan', async function () {
//     ...
//     if (missing) skipBecause(this, 'the kernel has no ipvlan (EOPNOTSUPP "Unknown device type")');
//   });

/** The property of a mocha test that holds its skip reason (read by the reporter). */
export const SKIP_REASON = 'skipReason';

export function skipBecause(ctx: Mocha.Context, reason: string): never {
  const own = ctx.test as Mocha.Test | Mocha.Hook | undefined;
  const running = own?.type === 'test' ? own : ctx.currentTest;
  if (running) (running as unknown as Record<string, unknown>)[SKIP_REASON] = reason;
  ctx.skip();
}
