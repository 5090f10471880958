/**
 * The package as a user gets it: `npm pack` holds what it must and nothing else; the tarball
 * installs into a fresh project (offline, from npm's cache: the sandbox has no network) and
 * works from CommonJS and from an ES module — once with the prebuild `npm run prebuild` makes
 * (nothing compiled at install), once forced to build the addon from source.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { registerCleanup, useSandbox } from '../helpers/sandbox';

const ROOT = path.resolve(__dirname, '../../..');
const NPM_ENV = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

function npm(args: string[], cwd: string): string {
  return execFileSync('npm', args, { cwd, encoding: 'utf8', env: NPM_ENV, timeout: 600000, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}

/** A copy of the checkout to pack from (prebuildify writes into its tree), sharing node_modules. */
function copyCheckout(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-pack-src-'));
  registerCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const entry of ['package.json', 'binding.gyp', 'README.md', 'CHANGELOG.md', 'LICENSE', 'native', 'esm', 'dist', 'bin', 'scripts']) {
    const from = path.join(ROOT, entry);
    if (fs.existsSync(from)) fs.cpSync(from, path.join(dir, entry), { recursive: true });
  }
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

function pack(dir: string): { tarball: string; files: string[] } {
  const out = JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dir], dir));
  return { tarball: path.join(dir, out[0].filename), files: out[0].files.map((f: { path: string }) => f.path) };
}

/**
 * The versions of nsnet's production dependencies that npm's cache holds (ours, from our lock):
 * offline, npm can only install what it has, and left alone it would pick newer releases.
 */
function pinnedVersions(): Record<string, string> {
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string; dev?: boolean }> };
  const seen = new Map<string, Set<string>>();
  for (const [key, p] of Object.entries(lock.packages)) {
    if (!key || p.dev || !p.version) continue;
    const name = key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
    seen.set(name, (seen.get(name) ?? new Set()).add(p.version));
  }
  // A package the tree holds in several versions keeps its ranges (they resolve to cached ones).
  return Object.fromEntries([...seen].filter(([, v]) => v.size === 1).map(([n, v]) => [n, [...v][0]!]));
}

/** Installs the tarball into a new project and uses it from CJS and ESM; returns the installed package's dir. */
function installAndUse(tarball: string, extra: string[]): string {
  const app = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-pack-app-'));
  registerCleanup(() => fs.rmSync(app, { recursive: true, force: true }));
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, overrides: pinnedVersions() }));
  npm(['install', '--offline', '--no-package-lock', ...extra, tarball], app);
  const use = `
    const { Netlink, Netns, NetworkHost, doctor } = nsnet;
    const nl = await Netlink.open();
    const links = await nl.links.list();
    nl.close();
    console.log(JSON.stringify({ lo: links.some((l) => l.name === 'lo'), netns: Array.isArray(await Netns.list()), host: typeof NetworkHost.open, doctor: typeof doctor }));`;
  fs.writeFileSync(path.join(app, 'use.cjs'), `const nsnet = require('nsnet');\n(async () => {${use}})().catch((e) => { console.error(e); process.exit(1); });\n`);
  fs.writeFileSync(path.join(app, 'use.mjs'), `import * as nsnet from 'nsnet';\n${use}\n`);
  const want = { lo: true, netns: true, host: 'function', doctor: 'function' };
  for (const f of ['use.cjs', 'use.mjs']) {
    const out = execFileSync(process.execPath, [f], { cwd: app, encoding: 'utf8', timeout: 30000 });
    assert.deepEqual(JSON.parse(out.trim()), want, `${f} works`);
  }
  // The CNI plugin runs from the installed package's bin.
  const version = JSON.parse(execFileSync(path.join(app, 'node_modules', '.bin', 'nsnet-cni'), [], {
    env: { ...process.env, CNI_COMMAND: 'VERSION' }, input: '{"cniVersion":"1.1.0"}', encoding: 'utf8', timeout: 30000,
  }));
  assert.ok(version.supportedVersions.includes('1.1.0'), 'nsnet-cni VERSION answers');
  // TypeScript users get the declarations.
  assert.ok(fs.existsSync(path.join(app, 'node_modules', 'nsnet', 'dist', 'lib', 'index.d.ts')));
  return path.join(app, 'node_modules', 'nsnet');
}

describe('package: npm pack, install from the tarball, use', function () {
  this.timeout(1200000);
  useSandbox();

  it('packs exactly what a user needs; installs with the prebuild (no compile) and forced from source; works from CJS and ESM', () => {
    const src = copyCheckout();
    npm(['run', 'prebuild'], src);
    const prebuilds = fs.readdirSync(path.join(src, 'prebuilds', 'linux-x64'));
    assert.ok(prebuilds.some((f) => f.endsWith('.node')), `npm run prebuild made a .node (${prebuilds})`);
    const { tarball, files } = pack(src);

    for (const f of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'binding.gyp', 'esm/index.mjs', 'dist/lib/index.js', 'dist/lib/index.d.ts', 'native/addon.cc'])
      assert.ok(files.includes(f), `${f} is in the package`);
    assert.ok(files.some((f) => /^prebuilds\/linux-x64\/.+\.node$/.test(f)), 'the prebuild is in the package');
    assert.ok(files.includes('prebuilds/linux-x64/nsnet-cni'), 'the CNI client is prebuilt too');
    const unwanted = files.filter((f) => /^(test|bench|scripts|\.ci|lib|docs)\/|^dist\/(test|bench)\/|\.ts$(?<!\.d\.ts$)|^native\/fuzz\//.test(f));
    assert.deepEqual(unwanted, [], 'no tests, benchmarks, scripts or TypeScript sources');
    const pkg = JSON.parse(fs.readFileSync(path.join(src, 'package.json'), 'utf8'));
    for (const bin of Object.values<string>(pkg.bin ?? {})) assert.ok(files.includes(bin.replace(/^\.\//, '')), `bin ${bin} is packed`);

    // With the prebuild: nothing is compiled at install time.
    const withPrebuild = installAndUse(tarball, []);
    assert.equal(fs.existsSync(path.join(withPrebuild, 'build')), false, 'the prebuild was used: no build/ directory');

    // Forced from source: node-gyp compiles the addon, which then loads.
    const fromSource = installAndUse(tarball, ['--build-from-source']);
    assert.ok(fs.existsSync(path.join(fromSource, 'build', 'Release', 'nsnet.node')), 'built from source');
  });
});
