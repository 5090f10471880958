/**
 * The package entry points: CommonJS and ES module exports agree; the addon loads; the
 * CommonJS entry (dist/lib/entry.js) exports exactly what lib/index.ts does, each module loaded
 * only when one of its exports is read.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..', '..');
// tsc would turn import() into require(); this keeps a real ES import.
const esmImport = new Function('s', 'return import(s)') as (s: string) => Promise<Record<string, unknown>>;

describe('package', () => {
  it('require() and import give the same public API', async () => {
    const cjs = require(path.join(root, 'dist', 'lib', 'index.js')) as Record<string, unknown>;
    const esm = await esmImport(path.join(root, 'esm', 'index.mjs'));
    const names = Object.keys(cjs).sort();
    assert.deepEqual(
      Object.keys(esm)
        .filter((k) => k !== 'default')
        .sort(),
      names,
    );
    for (const n of names) assert.equal(esm[n], cjs[n], n);
    for (const n of ['Netns', 'Netlink', 'NetlinkError', 'NsnetError', 'FileLock']) assert.equal(typeof cjs[n], 'function', n);
  });

  it('the lazy entry exports the same names and the same objects as lib/index.ts', () => {
    const index = require(path.join(root, 'dist', 'lib', 'index.js')) as Record<string, unknown>;
    const entry = require(path.join(root, 'dist', 'lib', 'entry.js')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(entry).sort(), Object.keys(index).sort());
    for (const n of Object.keys(index)) assert.equal(entry[n], index[n], n);
    const pkg = require(path.join(root, 'package.json'));
    assert.equal(pkg.main, 'dist/lib/entry.js');
    assert.equal(pkg.exports['.'].require, './dist/lib/entry.js');
  });

  it("require('nsnet') loads no module until an export is read, then only what that export needs", () => {
    const script = `
      const before = new Set(Object.keys(require.cache));
      const nsnet = require(${JSON.stringify(path.join(root, 'dist', 'lib', 'entry.js'))});
      const loaded = () => Object.keys(require.cache).filter((k) => !before.has(k)).map((k) => k.slice(${JSON.stringify(root)}.length + 1));
      const atRequire = loaded();
      void nsnet.NsnetError;
      const afterErrors = loaded();
      void nsnet.Netlink;
      const afterNetlink = loaded();
      process.stdout.write(JSON.stringify({ atRequire, afterErrors, afterNetlink }));`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const o = JSON.parse(r.stdout) as Record<string, string[]>;
    assert.deepEqual(o.atRequire, ['dist/lib/entry.js']);
    assert.deepEqual(o.afterErrors, ['dist/lib/entry.js', 'dist/lib/errors.js']);
    assert.ok(o.afterNetlink!.includes('dist/lib/netlink/netlink.js'));
    for (const heavy of ['dist/lib/host.js', 'dist/lib/firewall/firewall.js', 'dist/lib/nftables/nftables.js', 'dist/lib/doctor.js']) {
      assert.ok(!o.afterNetlink!.includes(heavy), `reading Netlink loaded ${heavy}`);
    }
  });

  it("resolves by package name both ways: require('nsnet') and import 'nsnet'", async () => {
    // A package may refer to itself by name through its "exports" map.
    const byName = require('nsnet') as Record<string, unknown>;
    assert.equal(byName.Netlink, require(path.join(root, 'dist', 'lib', 'index.js')).Netlink);
    const esm = await esmImport('nsnet');
    assert.equal(esm.Netlink, byName.Netlink);
    const pkg = require(path.join(root, 'package.json'));
    assert.equal(pkg.scripts.install, 'node-gyp-build');
  });
});
