/** `nsnet` in overlay mode: two hosts on an underlay, a shared control-plane directory, `nsnet agent` per host. */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sh } from '../helpers/oracle';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';
import { tcpReach } from '../helpers/traffic';
import { BIN, fails, json, nsnet, stateDir } from './run';

describe('cli: overlay networks and nsnet agent', function () {
  this.timeout(120000);
  useSandbox();

  it('creates the overlay on two hosts, runs an agent for each, connects a container behind each: they talk; SIGTERM stops an agent cleanly', async () => {
    const hosts = [await makeNetns('oh'), await makeNetns('oh')];
    sh('ip', ['-n', hosts[0]!, 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul0', 'netns', hosts[1]!]);
    hosts.forEach((h, i) => {
      sh('ip', ['-n', h, 'addr', 'add', `198.18.9.${i + 1}/24`, 'dev', 'ul0']);
      sh('ip', ['-n', h, 'link', 'set', 'ul0', 'up']);
    });
    const cp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-cli-cp-'));
    registerCleanup(() => fs.rmSync(cp, { recursive: true, force: true }));
    const globals = hosts.map((h, i) => ['--state-dir', stateDir(), '--host-netns', h, '--control-plane', cp, '--host-id', `h${i + 1}`, '--underlay', 'ul0']);
    const run = (i: number, args: string[]) => nsnet([...globals[i]!, ...args]);

    fails(nsnet(['--state-dir', stateDir(), '--host-netns', hosts[0]!, 'network', 'create', '-d', 'overlay', '--vni', '42', 'ov']), 'ERR_NO_CONTROL_PLANE', 7);
    const nets = [0, 1].map((i) => json(run(i, ['--json', 'network', 'create', '-d', 'overlay', '--subnet', '10.89.0.0/16', '--vni', '4343', 'ov'])));
    assert.equal(nets[0].driver, 'overlay');
    assert.equal(nets[0].vni, 4343);
    const agents = globals.map((g) => {
      const p = spawn(process.execPath, [BIN, ...g, 'agent'], { stdio: ['ignore', 'ignore', 'pipe'] });
      registerCleanup(() => {
        p.kill('SIGKILL');
      });
      return p;
    });
    const cs = [await makeNetns('oc'), await makeNetns('oc')];
    const eps = [0, 1].map((i) => json(run(i, ['--json', 'connect', 'ov', `c${i + 1}`, '--netns', cs[i]!])));
    const target = eps[1].ipv4.split('/')[0];
    let reached = false;
    for (let t = 0; t < 20 && !reached; t++) reached = await tcpReach(cs[1]!, cs[0]!, target, 7800 + t, 1000);
    assert.ok(reached, `c1 reaches c2 (${target}) across the overlay`);
    const exited = new Promise<number | null>((r) => agents[0]!.once('exit', (code) => r(code)));
    agents[0]!.kill('SIGTERM');
    assert.equal(await exited, 0, 'the agent leaves cleanly on SIGTERM');
    fails(nsnet([...globals[0]!, 'agent'].filter((_, i) => i < 4 || i > 5)), 'ERR_INVALID_ARGUMENT', 5);
  });
});
