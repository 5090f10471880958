/**
 * Installing nsnet-cni where podman 4.3 looks for CNI plugins (issue 15, item 5). CNI plugins
 * are installed by putting an executable into the plugin directory; nsnet's is a launcher that
 * must know where its package is. `nsnet cni install --bin-dir DIR` writes one naming the
 * package by absolute path, which keeps working when copied on (to a second plugin directory,
 * say); a plain copy of the package's bin/nsnet-cni cannot know where the package is, and says
 * so with the command that fixes it (the decision is bin/nsnet-cni's, see its comment). Each
 * scenario ends with nothing left.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { useSandbox } from '../helpers/sandbox';
import { skipBecause } from '../helpers/skip';
import { Podman, ROOT, podmanMissing } from '../helpers/podman';
import { assertNothingLeft, waitFor } from '../helpers/runtime';
import { EXT_IP, HOST_IP } from '../helpers/runtime-sandbox';

const NSNET = path.join(ROOT, 'bin', 'nsnet');

describe('podman drives nsnet-cni: installing the plugin', function () {
  this.timeout(180000);
  useSandbox();
  const missing = podmanMissing();

  beforeEach(function () {
    if (missing) skipBecause(this, missing);
  });

  /** A podman sandbox whose plugin directory has no nsnet-cni yet. */
  async function bare(prefix: string): Promise<Podman> {
    const pm = await Podman.start({ prefix });
    fs.rmSync(path.join(pm.pluginDir, 'nsnet-cni'));
    pm.network('net1', { subnet: '10.77.0.0/24' });
    return pm;
  }

  it('`nsnet cni install --bin-dir DIR` installs a plugin podman runs: run --rm, then a published port', async () => {
    const pm = await bare('inst');
    await pm.sandbox.check(process.execPath, [NSNET, 'cni', 'install', '--bin-dir', pm.pluginDir]);
    const plugin = path.join(pm.pluginDir, 'nsnet-cni');
    assert.ok(fs.lstatSync(plugin).isFile(), 'a file, not a symlink');
    const r = await pm.run('once', { networks: ['net1'], detach: false, cmd: ['ip', '-4', '-o', 'addr', 'show', 'eth0'] });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /inet 10\.77\.0\.\d+\/24/u);
    await assertNothingLeft(pm, 'after run --rm');
    await pm.start('web', { networks: ['net1'], publish: ['8080:80'] });
    assert.equal(await waitFor(() => pm.sandbox.fetch(`http://${HOST_IP}:8080/cgi-bin/who`, 'ext'), 'the published port'), `web ${EXT_IP}`);
    await pm.rm('web');
    await assertNothingLeft(pm, 'after rm');
  });

  it("the launcher `nsnet cni install` wrote, copied into podman's plugin directory, works there", async () => {
    const pm = await bare('copy');
    const elsewhere = path.join(pm.sandbox.dir, 'opt-cni-bin');
    await pm.sandbox.check(process.execPath, [NSNET, 'cni', 'install', '--bin-dir', elsewhere]);
    fs.copyFileSync(path.join(elsewhere, 'nsnet-cni'), path.join(pm.pluginDir, 'nsnet-cni'));
    fs.chmodSync(path.join(pm.pluginDir, 'nsnet-cni'), 0o755);
    fs.rmSync(elsewhere, { recursive: true });
    const r = await pm.run('once', { networks: ['net1'], detach: false, cmd: ['ip', '-4', '-o', 'addr', 'show', 'eth0'] });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /inet 10\.77\.0\.\d+\/24/u);
    await assertNothingLeft(pm, 'after run --rm');
  });

  it('a plain copy of bin/nsnet-cni: podman reports that it cannot find its package and the command that installs it; nothing is made', async () => {
    const pm = await Podman.start({ prefix: 'plain', install: 'copy' });
    pm.network('net1', { subnet: '10.77.0.0/24' });
    const r = await pm.run('once', { networks: ['net1'], detach: false, cmd: ['true'] });
    assert.notEqual(r.code, 0, 'podman cannot use the network');
    assert.match(r.stderr, /nsnet-cni cannot find the nsnet package/u);
    assert.match(r.stderr, /nsnet cni install --bin-dir DIR/u);
    assert.match(r.stderr, /ERR_NOT_INSTALLED/u);
    await assertNothingLeft(pm, 'after the refused run');
  });
});
