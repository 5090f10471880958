/** The package entry points: CommonJS and ES module exports agree; the addon loads. */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..', '..');
// tsc would turn import() into require(); this keeps a real ES import.
const esmImport = new Function('s', 'return import(s)') as (s: string) => Promise<Record<string, unknown>>;

describe('package', () => {
  it('require() and import give the same public API', async () => {
    const cjs = require(path.join(root, 'dist', 'lib', 'index.js')) as Record<string, unknown>;
    const esm = await esmImport(path.join(root, 'esm', 'index.mjs'));
    const names = Object.keys(cjs).sort();
    assert.deepEqual(Object.keys(esm).filter((k) => k !== 'default').sort(), names);
    for (const n of names) assert.equal(esm[n], cjs[n], n);
    for (const n of ['Netns', 'Netlink', 'NetlinkError', 'NsnetError', 'FileLock']) assert.equal(typeof cjs[n], 'function', n);
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
