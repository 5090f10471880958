/** Where the bench finds the package, writes its results, and finds the peers it runs. */
import * as fs from 'node:fs';
import * as path from 'node:path';

function findRoot(dir: string): string {
  for (let d = dir; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json')) && fs.existsSync(path.join(d, 'bench'))) return d;
    if (path.dirname(d) === d) throw new Error(`bench: cannot find the package root above ${dir}`);
  }
}

/** The package root (found upwards from dist/bench/common/). */
export const ROOT = findRoot(__dirname);
export const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
/** The Debian python, the one python3-pyroute2 is installed for. */
export const PYTHON = '/usr/bin/python3';
/**
 * npm packages the bench compares with but nsnet does not depend on (the npm `netlink`
 * package): installed by scripts/bench-peers.sh into bench/.peers (git-ignored), outside the
 * sandbox (it has no network). Not a devDependency: node_modules is shared with the other
 * checkouts of the project, and nothing but the bench needs it.
 */
export const PEER_MODULES = path.join(ROOT, 'bench', '.peers', 'node_modules');
