/**
 * Which CNI versions podman 4.3 can use with nsnet-cni. Its libcni (1.1.x) parses results up to
 * 1.0.0 and asks each plugin VERSION with `{"cniVersion":"1.0.0"}` when it loads a conflist.
 * Conflists of 0.3.1, 0.4.0 and 1.0.0 work; one of 1.1.0 used to fail after the ADD had run
 * ("unsupported CNI result version"). nsnet-cni now answers VERSION with the versions up to
 * the caller's, so podman refuses a 1.1.0 conflist when it loads it, naming the plugin and the
 * version, and nothing is made.
 */
import * as assert from 'node:assert/strict';
import { useSandbox } from '../helpers/sandbox';
import { skipBecause } from '../helpers/skip';
import { Podman, podmanMissing } from '../helpers/podman';
import { assertNothingLeft } from '../helpers/runtime';

describe('podman drives nsnet-cni: CNI versions', function () {
  this.timeout(180000);
  useSandbox();
  const missing = podmanMissing();
  let pm: Podman;

  beforeEach(async function () {
    if (missing) skipBecause(this, missing);
    pm = await Podman.start({ prefix: 'ver' });
  });

  it('conflists of CNI 0.3.1, 0.4.0 and 1.0.0 work', async () => {
    for (const [i, version] of ['0.3.1', '0.4.0', '1.0.0'].entries()) {
      const net = pm.network(`v${i}`, { subnet: `10.8${i}.0.0/24`, version });
      const r = await pm.run(`c${i}`, { networks: [net], detach: false, cmd: ['ip', '-4', '-o', 'addr', 'show', 'eth0'] });
      assert.equal(r.code, 0, `${version}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`inet 10\\.8${i}\\.0\\.\\d+/24`, 'u'), version);
    }
    await assertNothingLeft(pm, 'after three runs');
  });

  it('a conflist of CNI 1.1.0 is refused when podman loads it, naming nsnet-cni and the version; nothing is made', async () => {
    const net = pm.network('v11', { subnet: '10.89.0.0/24', version: '1.1.0' });
    const ls = await pm.podman(['network', 'ls', '--format', '{{.Name}}']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.equal(ls.stdout.split('\n').includes(net), false, `podman does not list the network: ${ls.stdout}`);
    assert.match(ls.stderr, /nsnet-cni does not support config version \\?"1\.1\.0\\?"/u, `podman says why: ${ls.stderr}`);
    const r = await pm.run('c', { networks: [net], detach: false, cmd: ['true'] });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /nsnet-cni does not support config version \\?"1\.1\.0\\?"/u, r.stderr);
    assert.doesNotMatch(r.stderr, /unsupported CNI result version/u, 'no longer fails after the ADD');
    assert.equal(
      (await pm.sandbox.links()).some((l) => l.startsWith('nsbr-')),
      false,
      'no bridge was made',
    );
    await assertNothingLeft(pm, 'after the refused run');
  });
});
