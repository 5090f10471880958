/**
 * The end-to-end tests' world: a "host" namespace whose uplink is a veth to an "external"
 * peer namespace (one /24 between them), a fresh state dir, and a NetworkHost over both —
 * all torn down after the test (or the describe, from a before()).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NetworkHost } from '../../lib/index';
import { sh } from './oracle';
import { makeNetns, registerCleanup } from './sandbox';

export interface World {
  /** The host namespace. */
  h: string;
  /** The external peer's namespace. */
  ext: string;
  stateDir: string;
  /** A NetworkHost on `h` and `stateDir` (replace it freely: the one here at teardown is closed). */
  host: NetworkHost;
}

/**
 * Makes the world: `uplink` (default up0) in the host with `hostIp`/24, its peer eth0 in the
 * external namespace with `extIp`/24, both up.
 */
export async function makeWorld(o: { prefix: string; hostIp: string; extIp: string; uplink?: string }): Promise<World> {
  const h = await makeNetns(`${o.prefix}h`);
  const ext = await makeNetns(`${o.prefix}x`);
  const up = o.uplink ?? 'up0';
  sh('ip', ['-n', h, 'link', 'add', up, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ext]);
  sh('ip', ['-n', h, 'addr', 'add', `${o.hostIp}/24`, 'dev', up]);
  sh('ip', ['-n', h, 'link', 'set', up, 'up']);
  sh('ip', ['-n', h, 'link', 'set', 'lo', 'up']);
  sh('ip', ['-n', ext, 'addr', 'add', `${o.extIp}/24`, 'dev', 'eth0']);
  sh('ip', ['-n', ext, 'link', 'set', 'eth0', 'up']);
  sh('ip', ['-n', ext, 'link', 'set', 'lo', 'up']);
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), `nsnet-${o.prefix}-`));
  const world: World = { h, ext, stateDir, host: await NetworkHost.open({ stateDir, netns: h }) };
  registerCleanup(async () => {
    await world.host.close().catch(() => undefined);
    fs.rmSync(stateDir, { recursive: true, force: true });
  });
  return world;
}
