/**
 * Static addresses from podman: one `--ip` arrives as `CNI_ARGS=…;IP=<address>` (podman 4.3,
 * containers/common's CNI backend), several — `--ip` with `--ip6`, or the addresses
 * `podman network reload` keeps — as `runtimeConfig.ips` (the `ips` capability). The container
 * must get the address it asked for, keep it through a reload, and leave nothing behind.
 */
import * as assert from 'node:assert/strict';
import { useSandbox } from '../helpers/sandbox';
import { skipBecause } from '../helpers/skip';
import { Podman, podmanMissing } from '../helpers/podman';
import { assertNothingLeft, waitFor } from '../helpers/runtime';

const WHO = '/cgi-bin/who';

describe('podman drives nsnet-cni: static addresses (--ip)', function () {
  this.timeout(180000);
  useSandbox();
  const missing = podmanMissing();
  let pm: Podman;

  beforeEach(async function () {
    if (missing) skipBecause(this, missing);
    pm = await Podman.start({ prefix: 'ip', install: 'record' });
    pm.network('net1', { subnet: '10.77.0.0/24' });
  });

  /** The IPv4 addresses of a container's interface, as the container sees them. */
  const addrsIn = async (name: string, ifname = 'eth0'): Promise<string[]> => {
    const r = await pm.exec(name, ['ip', '-4', '-o', 'addr', 'show', ifname]);
    assert.equal(r.code, 0, r.stderr);
    return [...r.stdout.matchAll(/inet (\S+)/gu)].map((m) => m[1]);
  };

  it('--ip (CNI_ARGS IP=…): the container gets that address, podman and nsnet say so, it answers there', async () => {
    await pm.start('web', { networks: ['net1'], ip: '10.77.0.50' });
    assert.ok(
      pm.calls().some((c) => c.command === 'ADD' && /(^|;)IP=10\.77\.0\.50(;|$)/u.test(c.args)),
      'podman sent the address in CNI_ARGS',
    );
    assert.deepEqual(await addrsIn('web'), ['10.77.0.50/24']);
    assert.equal(await pm.ipOf('web', 'net1'), '10.77.0.50', 'the result podman keeps');
    assert.deepEqual((await pm.leftovers()).leases, ['net1/10.77.0.50']);
    assert.match(await waitFor(() => pm.sandbox.fetch(`http://10.77.0.50${WHO}`), 'the container at its address'), /^web /u);
    await pm.rm('web');
    await assertNothingLeft(pm, 'after rm of a container with --ip');
  });

  it('one static address per network (--network NET:ip=…), on two networks', async () => {
    pm.network('net2', { subnet: '10.78.0.0/24' });
    await pm.start('two', { networks: ['net1:ip=10.77.0.60', 'net2:ip=10.78.0.60'] });
    // Podman 4.3 names the interfaces in no fixed order (eth0 may be on net2).
    assert.deepEqual([...(await addrsIn('two', 'eth0')), ...(await addrsIn('two', 'eth1'))].sort(), ['10.77.0.60/24', '10.78.0.60/24']);
    assert.equal(await pm.ipOf('two', 'net1'), '10.77.0.60');
    assert.equal(await pm.ipOf('two', 'net2'), '10.78.0.60');
    assert.deepEqual((await pm.leftovers()).leases, ['net1/10.77.0.60', 'net2/10.78.0.60']);
    await pm.rm('two');
    await assertNothingLeft(pm, 'after rm of a container on two networks');
  });

  it('network reload keeps the static address (runtimeConfig.ips with it twice); DEL works afterwards', async () => {
    await pm.start('web', { networks: ['net1'], ip: '10.77.0.50' });
    const reload = await pm.podman(['network', 'reload', 'web']);
    assert.equal(reload.code, 0, `network reload: ${reload.stderr}`);
    assert.deepEqual(await addrsIn('web'), ['10.77.0.50/24'], 'the same address after the reload');
    const left = await pm.leftovers();
    assert.equal(left.endpoints.length, 1);
    assert.deepEqual(left.leases, ['net1/10.77.0.50']);
    assert.equal(left.veths.length, 1, 'the old veth is gone, the new one is there');
    assert.match(await waitFor(() => pm.sandbox.fetch(`http://10.77.0.50${WHO}`), 'the container after the reload'), /^web /u);
    await pm.rm('web');
    assert.ok(pm.calls().filter((c) => c.command === 'DEL').length >= 2, 'DEL ran for the reload and for rm');
    await assertNothingLeft(pm, 'after reload and rm');
  });

  it('--ip with --ip6 on a dual-stack network: both addresses', async () => {
    pm.network('dual', { subnet: '10.79.0.0/24', nsnet: { subnet6: 'fd00:79::/64' } });
    await pm.start('dual', { networks: ['dual'], ip: '10.79.0.70', flags: ['--ip6', 'fd00:79::70'] });
    assert.deepEqual(await addrsIn('dual'), ['10.79.0.70/24']);
    const r6 = await pm.exec('dual', ['ip', '-6', '-o', 'addr', 'show', 'eth0', 'scope', 'global']);
    assert.match(r6.stdout, /inet6 fd00:79::70\/64/u);
    await pm.rm('dual');
    await assertNothingLeft(pm, 'after rm of a dual-stack container');
  });

  it('an address another container holds: podman run fails naming it, and leaves nothing of the second container', async () => {
    await pm.start('first', { networks: ['net1'], ip: '10.77.0.50' });
    const second = await pm.run('second', { networks: ['net1'], ip: '10.77.0.50' });
    assert.notEqual(second.code, 0);
    assert.match(second.stderr, /10\.77\.0\.50/u, second.stderr);
    assert.match(second.stderr, /already leased to .*ERR_ADDRESS_IN_USE/u, second.stderr);
    await pm.rm('second');
    const left = await pm.leftovers();
    assert.equal(left.endpoints.length, 1, `only the first: ${left.endpoints.join(' ')}`);
    assert.deepEqual(left.leases, ['net1/10.77.0.50']);
    assert.match(await waitFor(() => pm.sandbox.fetch(`http://10.77.0.50${WHO}`), 'the first container'), /^first /u, 'the first keeps its address');
    await pm.rm('first');
    await assertNothingLeft(pm, 'after rm of both');
  });
});
