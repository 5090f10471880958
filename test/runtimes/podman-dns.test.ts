/**
 * Podman 4.3 (CNI backend) and nsnet's embedded DNS, as a user meets it: a conflist with
 * nsnet-cni alone (declaring the `aliases` capability), no daemon started by hand. `podman run
 * --network net1 --name web --network-alias www` — podman passes the container's name as
 * CNI_ARGS K8S_POD_NAME and the alias in `runtimeConfig.aliases` (libcni only hands it to a
 * plugin that declares the capability) — and the nsnet-cni client starts the daemon, whose
 * resolver serves both; the ADD result's `dns` makes podman write the network's gateway into
 * the container's /etc/resolv.conf. Another container then finds `web` and `www` with busybox
 * nslookup, through that resolv.conf, forward and back; once `web` is removed its names are
 * gone, and nothing is left.
 */
import * as assert from 'node:assert/strict';
import { useSandbox } from '../helpers/sandbox';
import { skipBecause } from '../helpers/skip';
import { Podman, podmanMissing } from '../helpers/podman';
import { assertNothingLeft, waitFor } from '../helpers/runtime';

describe("podman: containers of an nsnet network find each other by name (the nsnet daemon's DNS)", function () {
  this.timeout(180000);
  useSandbox();
  const missing = podmanMissing();
  let pm: Podman;

  beforeEach(async function () {
    if (missing) skipBecause(this, missing);
    pm = await Podman.start({ prefix: 'pd' });
    pm.network('net1', { subnet: '10.79.0.0/24', nsnet: { capabilities: { portMappings: true, ips: true, aliases: true } } });
  });

  it("run --name web --network-alias www: another container resolves both (and web's address back) through its resolv.conf; the names go with the container", async () => {
    await pm.start('web', { networks: ['net1'], flags: ['--network-alias', 'www'] });
    await pm.start('client', { networks: ['net1'] });
    const ip = await pm.ipOf('web', 'net1');

    const resolv = await pm.exec('client', ['cat', '/etc/resolv.conf']);
    assert.equal(resolv.code, 0, resolv.stderr);
    assert.match(resolv.stdout, /^nameserver 10\.79\.0\.1$/mu, `podman wrote the result's nameserver:\n${resolv.stdout}`);

    for (const name of ['web', 'www']) {
      const forward = await pm.exec('client', ['busybox', 'nslookup', name]);
      assert.equal(forward.code, 0, forward.stdout + forward.stderr);
      assert.match(forward.stdout, /^Server:\s+10\.79\.0\.1$/mu, forward.stdout);
      assert.match(forward.stdout, new RegExp(`^Name:\\s+${name}\\nAddress:\\s+${ip.replace(/\./gu, '\\.')}$`, 'mu'), forward.stdout);
    }
    const back = await pm.exec('client', ['busybox', 'nslookup', ip]);
    assert.equal(back.code, 0, back.stdout + back.stderr);
    assert.match(back.stdout, /name = web$/mu, back.stdout);
    // And a name that is no container's: answered at once, not found.
    const none = await pm.exec('client', ['busybox', 'nslookup', 'nosuch']);
    assert.notEqual(none.code, 0);
    assert.match(none.stdout + none.stderr, /NXDOMAIN|can't find/u);

    await pm.rm('web');
    for (const name of ['web', 'www']) {
      const gone = await waitFor(async () => {
        const r = await pm.exec('client', ['busybox', 'nslookup', name]);
        return r.code !== 0 && /NXDOMAIN|can't find/u.test(r.stdout + r.stderr) ? 'gone' : '';
      }, `${name} to go`);
      assert.equal(gone, 'gone');
    }
    await pm.rm('client');
    await assertNothingLeft(pm, 'after rm -f of both');
  });
});
