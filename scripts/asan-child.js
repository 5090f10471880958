'use strict';
// Loaded with `node -r` into the test process that scripts/asan.js starts (and only there).
// That process runs with the ASan runtime preloaded and the sanitized addon (LD_PRELOAD,
// NSNET_ADDON); the programs its tests start — ip, nft, conntrack, and the node helpers that
// serve or send test traffic — must not: iproute2's `ip` trips ASan's strncpy overlap check
// (strncpy(p, p, n)), and node starts three times slower under the ASan allocator. So the
// settings move out of the environment children inherit, into NSNET_ASAN_PRELOAD and
// NSNET_ASAN_ADDON. A child that is meant to run the sanitized addon too (the scenarios of
// test/kernel/release.test.ts) puts them back. Any other child loads the normal build.
for (const [from, to] of [
  ['LD_PRELOAD', 'NSNET_ASAN_PRELOAD'],
  ['NSNET_ADDON', 'NSNET_ASAN_ADDON'],
]) {
  if (process.env[from] !== undefined) {
    process.env[to] = process.env[from];
    delete process.env[from];
  }
}
