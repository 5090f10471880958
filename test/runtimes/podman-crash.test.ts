/**
 * A container whose network namespace vanished (a crash: conmon and the container killed, the
 * namespace's mount gone as after a reboot), then `podman rm -f`. Podman 4.3 cannot enter the
 * namespace and never calls DEL ("Joining network namespace … no such file or directory"), so
 * nsnet keeps the endpoint, its lease, its published port and its firewall elements. What
 * cleans them: `nsnet gc`, a CNI GC (`cni.dev/valid-attachments`), and nsnet-cni itself when a
 * new ADD needs the address or port the dead attachment holds. Each is proven here; libcni's
 * own cache entry of the dead attachment is podman's, and stays.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { useSandbox } from '../helpers/sandbox';
import { skipBecause } from '../helpers/skip';
import { LAUNCHER, Podman, ROOT, podmanMissing } from '../helpers/podman';
import { storeDocs, waitFor, type Leftovers } from '../helpers/runtime';
import { EXT_IP, HOST_IP } from '../helpers/runtime-sandbox';

const WHO = '/cgi-bin/who';

describe('podman drives nsnet-cni: a container whose namespace vanished', function () {
  this.timeout(180000);
  useSandbox();
  const missing = podmanMissing();
  let pm: Podman;

  beforeEach(async function () {
    if (missing) skipBecause(this, missing);
    pm = await Podman.start({ prefix: 'crash', install: 'record' });
    pm.network('net1', { subnet: '10.77.0.0/24' });
  });

  /** Kills conmon and the container, unmounts and removes the namespace, waits for its veth to go; then `podman rm -f`. */
  async function crashAndRemove(name: string): Promise<string> {
    const id = await pm.idOf(name);
    const [pid, conmon, netns] = (await pm.ok(['inspect', '--format', '{{.State.Pid}} {{.State.ConmonPid}} {{.NetworkSettings.SandboxKey}}', name]))
      .trim()
      .split(' ');
    // conmon first: alive, it would run `podman container cleanup` (and so DEL) when the container dies.
    await pm.sandbox.check('kill', ['-9', conmon, pid]);
    await pm.sandbox.check('umount', [netns]);
    await pm.sandbox.check('rm', ['-f', netns]);
    const veth = storeDocs(pm.stateDir, 'endpoints').find((d) => d.value.id === `${id}:eth0`)?.value.hostIfname as string;
    await waitFor(async () => !(await pm.sandbox.links()).includes(veth), 'the veth to go with the namespace');
    const rm = await pm.podman(['rm', '-f', '-t', '0', name]);
    assert.equal(rm.code, 0, `podman rm -f: ${rm.stderr}`);
    assert.match(rm.stderr, /network namespace/iu, 'podman says it could not enter the namespace');
    return id;
  }

  /** nsnet's part of what is left. */
  const nsnetPart = (l: Leftovers) => ({ endpoints: l.endpoints, leases: l.leases, ports: l.ports, elements: l.elements, veths: l.veths });
  const empty = { endpoints: [], leases: [], ports: [], elements: [], veths: [] };

  it('podman rm -f calls no DEL: the endpoint, its lease, its port and its elements stay; `nsnet gc` removes them', async () => {
    await pm.start('web', { networks: ['net1'], publish: ['8090:80'] });
    const id = await crashAndRemove('web');
    assert.deepEqual(
      pm
        .calls()
        .filter((c) => c.command === 'DEL')
        .map((c) => c.containerId),
      [],
      'podman 4.3 called no DEL',
    );
    const left = await pm.leftovers();
    assert.deepEqual(left.endpoints, [`${id}:eth0`], 'the endpoint stays');
    assert.equal(left.leases.length, 1, 'its lease stays');
    assert.equal(left.ports.length, 1, 'its port stays in the ledger');
    assert.deepEqual(left.elements, [`${id}:eth0`], 'its firewall elements stay');
    assert.deepEqual(left.containers, [], 'podman forgot the container');
    assert.deepEqual(left.runtimeCache, [`net1-${id}-eth0`], "libcni's cache entry is podman's, and stays");

    const gc = await pm.sandbox.exec(process.execPath, [path.join(ROOT, 'bin', 'nsnet'), '--state-dir', pm.stateDir, '--json', 'gc']);
    assert.equal(gc.code, 0, gc.stderr);
    assert.deepEqual(JSON.parse(gc.stdout).endpoints, [`net1/${id}:eth0`], 'nsnet gc reports what it removed');
    assert.deepEqual(nsnetPart(await pm.leftovers()), empty, 'after nsnet gc');
  });

  it('a CNI GC (cni.dev/valid-attachments) removes the dead attachment and keeps the live one', async () => {
    await pm.start('live', { networks: ['net1'], publish: ['8091:80'] });
    await pm.start('web', { networks: ['net1'], publish: ['8090:80'] });
    const liveId = await pm.idOf('live');
    const id = await crashAndRemove('web');
    assert.equal((await pm.leftovers()).endpoints.length, 2);
    const conf = {
      cniVersion: '1.1.0',
      name: 'net1',
      type: 'nsnet-cni',
      subnet: '10.77.0.0/24',
      stateDir: pm.stateDir,
      'cni.dev/valid-attachments': [{ containerID: liveId, ifname: 'eth0' }],
    };
    const gc = await pm.sandbox.exec(LAUNCHER, [], { env: { CNI_COMMAND: 'GC', CNI_PATH: pm.pluginDir }, input: JSON.stringify(conf) });
    assert.equal(gc.code, 0, `GC: ${gc.stdout}${gc.stderr}`);
    const left = await pm.leftovers();
    assert.deepEqual(left.endpoints, [`${liveId}:eth0`], 'only the live attachment');
    assert.deepEqual(left.elements, [`${liveId}:eth0`]);
    assert.equal(left.ports.length, 1);
    assert.equal(left.elements.includes(`${id}:eth0`), false);
    assert.equal(await waitFor(() => pm.sandbox.fetch(`http://${HOST_IP}:8091${WHO}`, 'ext'), 'the live container'), `live ${EXT_IP}`);
    await pm.rm('live');
  });

  it('a new container may take the port and the address the dead one held: nsnet-cni reclaims them on ADD', async () => {
    await pm.start('web', { networks: ['net1'], publish: ['8090:80'], ip: '10.77.0.50' });
    const id = await crashAndRemove('web');
    await pm.start('again', { networks: ['net1'], publish: ['8090:80'], ip: '10.77.0.50' });
    assert.equal(await waitFor(() => pm.sandbox.fetch(`http://${HOST_IP}:8090${WHO}`, 'ext'), 'the new container'), `again ${EXT_IP}`);
    const left = await pm.leftovers();
    assert.equal(left.endpoints.length, 1);
    assert.equal(left.endpoints.includes(`${id}:eth0`), false, 'the dead attachment is gone');
    assert.deepEqual(left.leases, ['net1/10.77.0.50']);
    await pm.rm('again');
    assert.deepEqual(nsnetPart(await pm.leftovers()), empty, 'after rm of the new container');
  });
});
