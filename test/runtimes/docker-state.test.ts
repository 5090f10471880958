/**
 * The Docker plugin's state is nsnet's: one port ledger and one IPAM shared with the CLI (a port
 * Docker publishes is refused to `nsnet connect` and the other way round; an address nsnet
 * leased is never handed to a Docker container), and nothing of it lives only in the plugin or
 * in dockerd: both restart while containers run, traffic keeps flowing, and `rm -f` afterwards
 * leaves nothing.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { useSandbox } from '../helpers/sandbox';
import { skipBecause } from '../helpers/skip';
import { Docker, dockerMissing } from '../helpers/docker';
import { ROOT } from '../helpers/podman';
import { assertNothingLeft, waitFor } from '../helpers/runtime';
import { EXT_IP, HOST_IP } from '../helpers/runtime-sandbox';

const WHO = '/cgi-bin/who';

describe('docker and nsnet share one state', function () {
  this.timeout(240000);
  useSandbox();
  const missing = dockerMissing();

  /** Runs the nsnet CLI in the sandbox on the plugin's state. */
  const nsnet = (dk: Docker, args: string[]) => dk.sandbox.exec(process.execPath, [path.join(ROOT, 'bin', 'nsnet'), '--state-dir', dk.stateDir, ...args]);
  const reach = (dk: Docker, url: string): Promise<string> => waitFor(() => dk.sandbox.fetch(url, 'ext'), `${url} from outside`);

  it('one port ledger: a port a Docker container publishes is refused to nsnet connect, and the other way round', async function () {
    if (missing) skipBecause(this, missing);
    const dk = await Docker.start({ prefix: 'dkl' });
    await dk.network('app', ['--ipam-driver', 'nsnet', '--subnet', '10.81.0.0/24']);
    assert.equal((await nsnet(dk, ['network', 'create', '--subnet', '10.82.0.0/24', 'cli'])).code, 0);
    await dk.sandbox.check('ip', ['netns', 'add', 'c1']);
    await dk.sandbox.check('ip', ['netns', 'add', 'c2']);

    await dk.start('web', { networks: ['app'], publish: ['8080:80'] });
    const refused = await nsnet(dk, ['connect', 'cli', 'c1', '--netns', 'c1', '-p', '8080:80']);
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /ERR_PORT_IN_USE/u);
    assert.deepEqual((await dk.leftovers()).endpoints.length, 1, 'nsnet connect made nothing');

    assert.equal((await nsnet(dk, ['connect', 'cli', 'c2', '--netns', 'c2', '-p', '8081:80'])).code, 0);
    const r = await dk.run('web2', { networks: ['app'], publish: ['8081:80'] });
    assert.notEqual(r.code, 0, 'docker run -p of a port nsnet connect holds fails');
    assert.match(r.stderr, /ERR_PORT_IN_USE/u, r.stderr);
    await dk.rm('web2');
    const left = await dk.leftovers();
    assert.deepEqual(left.ports, ['tcp:8080', 'tcp:8081'], 'the refused container holds nothing');
    assert.equal(left.endpoints.length, 2);
    assert.equal(await reach(dk, `http://${HOST_IP}:8080${WHO}`), `web ${EXT_IP}`, 'the Docker container still has its port');

    // One IPAM: an address nsnet leased on the Docker network is not handed to a container.
    const netId = (await dk.ok(['network', 'inspect', '-f', '{{.Id}}', 'app'])).trim().slice(0, 12);
    await dk.sandbox.check('ip', ['netns', 'add', 'c3']);
    const c3 = await nsnet(dk, ['--json', 'connect', netId, 'c3', '--netns', 'c3']);
    assert.equal(c3.code, 0, c3.stderr);
    const c3ip = (JSON.parse(c3.stdout) as { ipv4: string }).ipv4.split('/')[0];
    await dk.start('web3', { networks: ['app'] });
    assert.notEqual(await dk.ipOf('web3', 'app'), c3ip, 'Docker got another address than the one nsnet connect leased');
    assert.notEqual(await dk.ipOf('web3', 'app'), await dk.ipOf('web', 'app'));

    await dk.rm('web', 'web3');
    for (const [net, id] of [
      ['cli', 'c2'],
      [netId, 'c3'],
    ])
      assert.equal((await nsnet(dk, ['disconnect', net!, id!])).code, 0);
    await dk.sandbox.check('ip', ['netns', 'del', 'c1']);
    await dk.sandbox.check('ip', ['netns', 'del', 'c2']);
    await dk.sandbox.check('ip', ['netns', 'del', 'c3']);
    await assertNothingLeft(dk, 'after rm -f and nsnet disconnect');
  });

  it('the plugin restarts (killed) while containers run: traffic flows on, and rm -f afterwards leaves nothing', async function () {
    if (missing) skipBecause(this, missing);
    const dk = await Docker.start({ prefix: 'dkp' });
    await dk.network('app', ['--ipam-driver', 'nsnet', '--subnet', '10.83.0.0/24']);
    await dk.start('web', { networks: ['app'], publish: ['8080:80'] });
    await reach(dk, `http://${HOST_IP}:8080${WHO}`);
    await dk.stopPlugin('KILL');
    assert.equal(await dk.sandbox.fetch(`http://${HOST_IP}:8080${WHO}`, 'ext'), `web ${EXT_IP}`, 'served while the plugin is down');
    await dk.startPlugin();
    await dk.start('web2', { networks: ['app'], publish: ['8081:80'] });
    assert.equal(await reach(dk, `http://${HOST_IP}:8081${WHO}`), `web2 ${EXT_IP}`, 'a new container after the restart');
    assert.notEqual(await dk.ipOf('web2', 'app'), await dk.ipOf('web', 'app'), 'the restarted IPAM knows the address web holds');
    await dk.ok(['network', 'disconnect', 'app', 'web']);
    assert.equal(await dk.sandbox.fetch(`http://${HOST_IP}:8080${WHO}`, 'ext', 2), '', 'disconnect after the restart unpublished the port');
    await dk.rm('web', 'web2');
    await assertNothingLeft(dk, 'after rm -f');
    await dk.ok(['network', 'rm', 'app']);
  });

  it('dockerd restarts (--live-restore) while containers run: traffic flows on, and rm -f afterwards leaves nothing', async function () {
    if (missing) skipBecause(this, missing);
    const dk = await Docker.start({ prefix: 'dkd', liveRestore: true });
    await dk.network('app', ['--subnet', '10.84.0.0/24']);
    await dk.start('web', { networks: ['app'], publish: ['8080:80'] });
    await reach(dk, `http://${HOST_IP}:8080${WHO}`);
    await dk.stopDockerd('TERM');
    assert.equal(await dk.sandbox.fetch(`http://${HOST_IP}:8080${WHO}`, 'ext'), `web ${EXT_IP}`, 'served while dockerd is down');
    await dk.startDockerd();
    assert.equal(await reach(dk, `http://${HOST_IP}:8080${WHO}`), `web ${EXT_IP}`, 'served after dockerd is back');
    assert.equal((await dk.leftovers()).endpoints.length, 1);
    await dk.ok(['restart', '-t', '0', 'web']);
    assert.equal(await reach(dk, `http://${HOST_IP}:8080${WHO}`), `web ${EXT_IP}`, "restart after dockerd's restart");
    await dk.rm('web');
    await assertNothingLeft(dk, 'after rm -f');
    await dk.ok(['network', 'rm', 'app']);
  });
});
