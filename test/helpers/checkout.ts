/**
 * The checkout under test as a package: where it is, which installed directories are its
 * production dependencies, and a copy of what an installed nsnet consists of — for tests that
 * must not depend on where the checkout lives (its parent may be readable by root only, as
 * `mktemp -d` makes it).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { registerCleanup } from './sandbox';

/** The checkout's root (tests run from dist/test/…). */
export const ROOT = path.resolve(__dirname, '..', '..', '..');

/** The installed directories of the checkout's production dependencies, from its lockfile. */
export function productionDirs(root = ROOT): string[] {
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; devOptional?: boolean; link?: boolean }>;
  };
  return Object.entries(lock.packages)
    .filter(([key, p]) => key.startsWith('node_modules/') && !p.dev && !p.devOptional && !p.link)
    .map(([key]) => path.join(root, key));
}

/**
 * A copy of nsnet as installed (package.json, bin, esm, dist/lib, the built addon and CNI client,
 * its production dependencies) in a fresh directory every user can read; removed after the test.
 * Returns the copy's root.
 */
export function installedCopy(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-installed-'));
  registerCleanup(() => fs.rmSync(dir, { recursive: true, force: true }), `rm ${dir}`);
  for (const entry of [
    'package.json',
    'bin',
    'esm',
    path.join('dist', 'lib'),
    path.join('build', 'Release', 'nsnet.node'),
    path.join('build', 'Release', 'nsnet-cni'),
  ]) {
    const from = path.join(ROOT, entry);
    if (fs.existsSync(from)) fs.cpSync(from, path.join(dir, entry), { recursive: true });
  }
  for (const from of productionDirs()) {
    // Nested copies (a/node_modules/b) come with their parent; node_modules of a package are its own business.
    const rel = path.relative(ROOT, from);
    if (rel.split(path.sep).filter((p) => p === 'node_modules').length > 1) continue;
    fs.cpSync(from, path.join(dir, rel), { recursive: true });
  }
  fs.chmodSync(dir, 0o755); // mkdtemp makes 0700
  return dir;
}
