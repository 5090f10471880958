/**
 * Shared plumbing of the benchmark suites, one concern per file under bench/common/:
 *
 *   paths.ts    the package root, bench/results, the peers' python and npm modules
 *   guard.ts    the sandbox check (scripts/sandbox-guard.js, shared with the test runner)
 *   measure.ts  timing, statistics, and rounds(): tools taking turns run by run
 *   process.ts  running peer tools as processes (timed), python / node scripts in a namespace,
 *               background servers, temporary files
 *   netns.ts    throw-away namespaces (withNetns, inFreshNetns: one fresh namespace per run),
 *               library handles opened and closed around a measurement, link flushing
 *   results.ts  the result types and summarize()
 *   machine.ts  the facts about the machine recorded with every result
 *
 * Suites import from here. This file stays (rather than a bench/common/index.ts) so that an
 * existing dist/bench/common.js is overwritten by the build instead of shadowing the new one.
 *
 * Everything runs inside the private namespaces made by scripts/sandbox.js; nothing may touch
 * the machine's own network namespace. Nothing here loads nsnet (lib/): bench/run.ts loads the
 * suites, and with them the addon, only after the sandbox check.
 */
export * from './common/paths';
export * from './common/guard';
export * from './common/measure';
export * from './common/process';
export * from './common/netns';
export * from './common/results';
export * from './common/machine';
