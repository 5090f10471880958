/**
 * A throwaway npm registry on 127.0.0.1 that serves the production dependencies of this checkout
 * from its own node_modules — what the package test installs nsnet's tarball against.
 *
 * Why (decided for issue "a fresh machine's CI is green"): the tests run in a network namespace
 * of their own, where the npm registry is unreachable, and `npm install --offline` only works
 * when npm's cache holds the registry's metadata (packuments) for every dependency — a fresh
 * machine's cache holds the lockfile's tarballs at most. So the test must not depend on npm's
 * cache at all: the checkout already has every production dependency installed (that is what
 * `npm install` did), and this registry packs each one (tar, `package/` prefix, as npm does) and
 * describes it in a packument with its integrity. npm then resolves and installs exactly as it
 * would against the real registry, with an empty cache of the test's own.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { productionDirs } from './checkout';

interface Version {
  manifest: Record<string, unknown>;
  /** Where the registry serves the tarball. */
  route: string;
  tarball: string;
  integrity: string;
  shasum: string;
}

export interface LocalRegistry {
  /** `http://127.0.0.1:PORT/` */
  url: string;
  /** Package names served. */
  packages: string[];
  close(): Promise<void>;
}

/** Packs an installed package directory as npm would (entries under `package/`), without its node_modules. */
function packDir(dir: string, out: string): void {
  execFileSync('tar', ['-czf', out, '--exclude=./node_modules', '--transform=s,^\\.,package,', '-C', dir, '.'], { stdio: 'ignore' });
}

/**
 * Starts the registry. `root` is the checkout whose node_modules holds the dependencies.
 * @throws when a production dependency of the lockfile is not installed (run `npm install`).
 */
export async function startLocalRegistry(root: string): Promise<LocalRegistry> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-registry-'));
  const byName = new Map<string, Map<string, Version>>();
  for (const [i, dir] of productionDirs(root).entries()) {
    const pj = path.join(dir, 'package.json');
    if (!fs.existsSync(pj)) throw new Error(`local registry: ${dir} is not installed (run npm install in the checkout)`);
    const manifest = JSON.parse(fs.readFileSync(pj, 'utf8')) as Record<string, unknown> & { name: string; version: string };
    const tarball = path.join(work, `${i}.tgz`);
    packDir(dir, tarball);
    const bytes = fs.readFileSync(tarball);
    const versions = byName.get(manifest.name) ?? new Map<string, Version>();
    versions.set(manifest.version, {
      manifest,
      route: `/-/${i}.tgz`,
      tarball,
      integrity: `sha512-${createHash('sha512').update(bytes).digest('base64')}`,
      shasum: createHash('sha1').update(bytes).digest('hex'),
    });
    byName.set(manifest.name, versions);
  }
  const tarballs = new Map([...byName.values()].flatMap((vs) => [...vs.values()].map((v) => [v.route, v.tarball] as const)));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const file = tarballs.get(url.pathname);
    if (file) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      fs.createReadStream(file).pipe(res);
      return;
    }
    const name = decodeURIComponent(url.pathname.slice(1));
    const versions = byName.get(name);
    if (!versions) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: `not found: ${name} is not a production dependency of this checkout` }));
      return;
    }
    const base = `http://${req.headers.host}`;
    const doc = {
      name,
      'dist-tags': { latest: [...versions.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1) },
      versions: Object.fromEntries(
        [...versions].map(([version, v]) => [version, { ...v.manifest, dist: { tarball: `${base}${v.route}`, integrity: v.integrity, shasum: v.shasum } }]),
      ),
    };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(doc));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    packages: [...byName.keys()],
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        fs.rmSync(work, { recursive: true, force: true });
      }),
  };
}
