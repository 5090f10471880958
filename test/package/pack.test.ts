/**
 * The package as a user gets it: `npm pack` holds what it must and nothing else; the tarball
 * installs into a fresh project and works from CommonJS and from an ES module — once with the
 * prebuild `npm run prebuild` makes (nothing compiled at install), once forced to build the
 * addon from source. The sandbox has no network and npm's cache is not to be trusted (a fresh
 * machine's holds no registry metadata), so the dependencies come from a registry on 127.0.0.1
 * that serves this checkout's installed ones (test/helpers/local-registry.ts), into an empty
 * cache of the test's own.
 */
import * as assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from '../helpers/checkout';
import { daemonsOf, freshSocket } from '../helpers/cni';
import { startLocalRegistry, type LocalRegistry } from '../helpers/local-registry';
import { registerCleanup, useSandbox } from '../helpers/sandbox';

const NPM_ENV = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

function npm(args: string[], cwd: string): string {
  return execFileSync('npm', args, { cwd, encoding: 'utf8', env: NPM_ENV, timeout: 600000, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
}

/** npm without blocking the event loop (the local registry answers from this process). */
async function npmAsync(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  try {
    return (await promisify(execFile)('npm', args, { cwd, encoding: 'utf8', env, timeout: 600000, maxBuffer: 64 << 20 })).stdout;
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`npm ${args.join(' ')} failed: ${err.message}\n${err.stderr ?? ''}`, { cause: e });
  }
}

/** A copy of the checkout to pack from (prebuildify writes into its tree), sharing node_modules. */
function copyCheckout(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-pack-src-'));
  registerCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const entry of ['package.json', 'binding.gyp', 'README.md', 'CHANGELOG.md', 'LICENSE', 'native', 'esm', 'dist', 'bin', 'scripts', 'systemd']) {
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

/** Installs the tarball into a new project and uses it from CJS and ESM; returns the installed package's dir. */
async function installAndUse(tarball: string, extra: string[], registry: LocalRegistry): Promise<string> {
  const app = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-pack-app-'));
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-pack-cache-'));
  registerCleanup(() => {
    fs.rmSync(app, { recursive: true, force: true });
    fs.rmSync(cache, { recursive: true, force: true });
  });
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  // An empty cache of its own and the local registry: nothing depends on what earlier installs left.
  const env = { ...NPM_ENV, npm_config_cache: cache, npm_config_registry: registry.url, npm_config_offline: 'false', npm_config_prefer_offline: 'false' };
  await npmAsync(['install', '--no-package-lock', ...extra, tarball], app, env);
  const use = `
    const { Netlink, Netns, NetworkHost, doctor } = nsnet;
    const nl = await Netlink.open();
    const links = await nl.links.list();
    nl.close();
    console.log(JSON.stringify({ lo: links.some((l) => l.name === 'lo'), netns: Array.isArray(await Netns.list()), host: typeof NetworkHost.open, doctor: typeof doctor }));`;
  fs.writeFileSync(
    path.join(app, 'use.cjs'),
    `const nsnet = require('nsnet');\n(async () => {${use}})().catch((e) => { console.error(e); process.exit(1); });\n`,
  );
  fs.writeFileSync(path.join(app, 'use.mjs'), `import * as nsnet from 'nsnet';\n${use}\n`);
  const want = { lo: true, netns: true, host: 'function', doctor: 'function' };
  for (const f of ['use.cjs', 'use.mjs']) {
    const out = execFileSync(process.execPath, [f], { cwd: app, encoding: 'utf8', timeout: 30000 });
    assert.deepEqual(JSON.parse(out.trim()), want, `${f} works`);
  }
  // The CNI plugin runs from the installed package's bin, and starts the installed package's
  // daemon (NSNET_CNI_MAIN names no script: an answer in node would fail).
  const socket = freshSocket();
  const version = JSON.parse(
    execFileSync(path.join(app, 'node_modules', '.bin', 'nsnet-cni'), [], {
      env: { ...process.env, CNI_COMMAND: 'VERSION', NSNET_CNI_SOCKET: socket, NSNET_CNI_AUTOSTART: '1', NSNET_CNI_MAIN: '/nonexistent.js' },
      input: '{"cniVersion":"1.1.0"}',
      encoding: 'utf8',
      timeout: 30000,
    }),
  );
  assert.ok(version.supportedVersions.includes('1.1.0'), 'nsnet-cni VERSION answers');
  const daemons = daemonsOf(socket);
  assert.equal(daemons.length, 1, 'through the daemon it started');
  assert.ok(
    daemons[0]!.args.some((a) => a.startsWith(path.join(app, 'node_modules', 'nsnet'))),
    `the installed package's daemon: ${daemons[0]!.args.join(' ')}`,
  );
  // TypeScript users get the declarations.
  assert.ok(fs.existsSync(path.join(app, 'node_modules', 'nsnet', 'dist', 'lib', 'index.d.ts')));
  return path.join(app, 'node_modules', 'nsnet');
}

describe('package: npm pack, install from the tarball, use', function () {
  this.timeout(1200000);
  useSandbox();

  it('packs exactly what a user needs; installs with the prebuild (no compile) and forced from source; works from CJS and ESM', async () => {
    const registry = await startLocalRegistry(ROOT);
    registerCleanup(() => registry.close());
    const src = copyCheckout();
    npm(['run', 'prebuild'], src);
    const prebuilds = fs.readdirSync(path.join(src, 'prebuilds', 'linux-x64'));
    assert.ok(
      prebuilds.some((f) => f.endsWith('.node')),
      `npm run prebuild made a .node (${prebuilds})`,
    );
    const { tarball, files } = pack(src);

    for (const f of [
      'package.json',
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
      'binding.gyp',
      'esm/index.mjs',
      'dist/lib/index.js',
      'dist/lib/entry.js',
      'dist/lib/index.d.ts',
      'native/addon.cc',
      'native/cni/autostart.c',
      'systemd/nsnet.socket',
      'systemd/nsnet.service',
      'systemd/nsnet-docker-plugin.service',
    ])
      assert.ok(files.includes(f), `${f} is in the package`);
    assert.ok(
      files.some((f) => /^prebuilds\/linux-x64\/.+\.node$/.test(f)),
      'the prebuild is in the package',
    );
    assert.ok(files.includes('prebuilds/linux-x64/nsnet-cni'), 'the CNI client is prebuilt too');
    const unwanted = files.filter((f) => /^(test|bench|scripts|\.ci|lib|docs)\/|^dist\/(test|bench)\/|\.ts$(?<!\.d\.ts$)|^native\/fuzz\//.test(f));
    assert.deepEqual(unwanted, [], 'no tests, benchmarks, scripts or TypeScript sources');
    const pkg = JSON.parse(fs.readFileSync(path.join(src, 'package.json'), 'utf8'));
    for (const bin of Object.values<string>(pkg.bin ?? {})) assert.ok(files.includes(bin.replace(/^\.\//, '')), `bin ${bin} is packed`);

    // With the prebuild: nothing is compiled at install time.
    const withPrebuild = await installAndUse(tarball, [], registry);
    assert.equal(fs.existsSync(path.join(withPrebuild, 'build')), false, 'the prebuild was used: no build/ directory');

    // Forced from source: node-gyp compiles the addon, which then loads.
    const fromSource = await installAndUse(tarball, ['--build-from-source'], registry);
    assert.ok(fs.existsSync(path.join(fromSource, 'build', 'Release', 'nsnet.node')), 'built from source');
  });
});
