/** `nsnet connect | disconnect | port` as processes, with real traffic through what they made. */
import { readResolvConf } from '../../lib/dns/resolvconf';
import * as assert from 'node:assert/strict';
import { makeNetns, useSandbox } from '../helpers/sandbox';
import { ipJson, sh } from '../helpers/oracle';
import { ask, server } from '../helpers/traffic';
import { type Result, cli, fails, json, stateDir } from './run';

describe('cli: connect, disconnect, port', function () {
  this.timeout(60000);
  useSandbox();
  let h: string;
  let ext: string;
  let run: (args: string[]) => Result;

  beforeEach(async () => {
    h = await makeNetns('ch');
    ext = await makeNetns('cx');
    sh('ip', ['-n', h, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ext]);
    sh('ip', ['-n', h, 'addr', 'add', '10.99.0.1/24', 'dev', 'up0']);
    sh('ip', ['-n', h, 'link', 'set', 'up0', 'up']);
    sh('ip', ['-n', ext, 'addr', 'add', '10.99.0.2/24', 'dev', 'eth0']);
    sh('ip', ['-n', ext, 'link', 'set', 'eth0', 'up']);
    run = cli(stateDir(), h);
    json(run(['--json', 'network', 'create', '--subnet', '172.20.0.0/16', 'app']));
  });

  it('connect publishes ports that answer from outside; port lists them like `docker port`; disconnect undoes it', async () => {
    const c1 = await makeNetns('c1');
    const r = run(['connect', 'app', 'c1', '--netns', c1, '-p', '8080:80', '-p', '127.0.0.1:5353:53/udp', '-p', '9000-9001:90-91']);
    assert.equal(r.status, 0, r.stderr);
    const [head, row] = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => l.split(/\s{2,}/u));
    assert.deepEqual(head, ['NETWORK', 'ID', 'NETNS', 'IFNAME', 'IPV4', 'MAC', 'PORTS']);
    assert.deepEqual(row, [
      'app',
      'c1',
      `/var/run/netns/${c1}`,
      'eth0',
      '172.20.0.2/16',
      '02:42:ac:14:00:02',
      '0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp, 0.0.0.0:9000-9001->90-91/tcp',
    ]);
    assert.equal(ipJson(['addr', 'show', 'eth0'], c1)[0].addr_info[0].local, '172.20.0.2');
    await server(c1, 80, 'c1');
    assert.equal(ask(ext, '10.99.0.1', 8080), 'c1 10.99.0.2', 'the published port answers');

    const p = run(['port', 'c1']);
    assert.deepEqual([p.status, p.stdout], [0, '80/tcp -> 0.0.0.0:8080\n53/udp -> 127.0.0.1:5353\n90/tcp -> 0.0.0.0:9000\n91/tcp -> 0.0.0.0:9001\n']);
    assert.equal(run(['port', 'c1', '91']).stdout, '91/tcp -> 0.0.0.0:9001\n');
    assert.equal(run(['port', 'c1', '53/udp']).stdout, '53/udp -> 127.0.0.1:5353\n');
    assert.deepEqual(json(run(['--json', 'port', 'c1', '80'])), [{ network: 'app', protocol: 'tcp', hostPort: 8080, containerPort: 80 }]);
    assert.deepEqual(json(run(['--json', 'port', 'c1']))[2], { network: 'app', protocol: 'tcp', hostPort: 9000, hostPortEnd: 9001, containerPort: 90 });
    fails(run(['port', 'c1', '53']), 'ERR_PORT_NOT_FOUND', 3);
    fails(run(['port', 'c1', 'x80']), 'ERR_INVALID_PORT', 5);
    fails(run(['port', 'nobody']), 'ERR_ENDPOINT_NOT_FOUND', 3);

    const d = run(['disconnect', 'app', 'c1']);
    assert.deepEqual([d.status, d.stdout, d.stderr], [0, '', '']);
    assert.equal(ask(ext, '10.99.0.1', 8080), '', 'unpublished');
    assert.deepEqual(
      ipJson(['link', 'show'], c1).map((l: any) => l.ifname),
      ['lo'],
    );
    fails(run(['--json', 'disconnect', 'app', 'c1']), 'ERR_ENDPOINT_NOT_FOUND', 3);
  });

  it('--json gives the Endpoint; a free host port is picked for -p CPORT; static --ip and --ifname; a pid as --netns', async () => {
    const c = await makeNetns('c');
    const ep = json(run(['--json', 'connect', 'app', 'c2', '--netns', `/var/run/netns/${c}`, '--ip', '172.20.0.50', '--ifname', 'eth1', '-p', '80']));
    assert.deepEqual(
      { ...ep, ports: undefined, hostIfname: undefined },
      {
        id: 'c2',
        network: 'app',
        driver: 'bridge',
        netns: `/var/run/netns/${c}`,
        ifname: 'eth1',
        mac: '02:42:ac:14:00:32',
        ipv4: '172.20.0.50/16',
        gateway: '172.20.0.1',
        ports: undefined,
        hostIfname: undefined,
        // A user-created bridge network has the embedded resolver: what the container's resolv.conf gets.
        dns: { nameservers: ['172.20.0.1'], search: readResolvConf().search, options: ['ndots:0'] },
      },
    );
    assert.match(ep.hostIfname, /^ve-[0-9a-f]{12}$/u);
    assert.equal(ep.ports.length, 1);
    assert.ok(ep.ports[0].hostPort >= 32768 && ep.ports[0].hostPort <= 60999, `picked ${ep.ports[0].hostPort}`);
    assert.equal(ipJson(['link', 'show', 'eth1'], c).length, 1);
    // A pid: this namespace as a process holds it.
    const sleeper = (await import('node:child_process')).spawn('ip', ['netns', 'exec', await makeNetns('pid'), 'sleep', '30']);
    try {
      await new Promise((r) => setTimeout(r, 300));
      const byPid = json(run(['--json', 'connect', 'app', 'c3', '--netns', String(sleeper.pid)]));
      assert.equal(byPid.netns, `/proc/${sleeper.pid}/ns/net`);
      json(run(['--json', 'disconnect', 'app', 'c3']));
    } finally {
      sleeper.kill();
    }
  });

  it('host, none and container:ID', async () => {
    const hostEp = json(run(['--json', 'connect', 'host', 'hw', '-p', '8000/tcp', '-p', '5300/udp']));
    assert.deepEqual(hostEp, {
      id: 'hw',
      network: 'host',
      driver: 'host',
      ports: [
        { protocol: 'tcp', hostPort: 8000, containerPort: 8000 },
        { protocol: 'udp', hostPort: 5300, containerPort: 5300 },
      ],
    });
    fails(run(['connect', 'host', 'hw2', '-p', '8000']), 'ERR_PORT_IN_USE', 4);
    fails(run(['connect', 'host', 'hw2', '-p', '8000:80']), 'ERR_INVALID_PORT', 5);
    fails(run(['connect', 'host', 'hw2', '--netns', h]), 'ERR_INVALID_ARGUMENT', 5);
    const c1 = await makeNetns('c1');
    fails(run(['connect', 'app', 'c1', '--netns', c1, '-p', '8000:80']), 'ERR_PORT_IN_USE', 4);

    const box = await makeNetns('box');
    sh('ip', ['-n', box, 'link', 'set', 'lo', 'down']);
    const none = json(run(['--json', 'connect', 'none', 'box', '--netns', box]));
    assert.deepEqual(none, { id: 'box', network: 'none', driver: 'none', netns: `/var/run/netns/${box}`, ports: [] });
    assert.deepEqual(
      ipJson(['link', 'show'], box).map((l: any) => [l.ifname, l.flags.includes('UP')]),
      [['lo', true]],
    );

    json(run(['--json', 'connect', 'app', 'c1', '--netns', c1]));
    const side = json(run(['--json', 'connect', 'container:c1', 'side']));
    assert.deepEqual([side.network, side.target, side.netns, side.ipv4], ['container', 'c1', `/var/run/netns/${c1}`, '172.20.0.2/16']);
    const side2 = json(run(['--json', 'connect', 'container', 'side2', '--target', 'c1']));
    assert.equal(side2.target, 'c1');
    fails(run(['connect', 'container:nobody', 'side3']), 'ERR_ENDPOINT_NOT_FOUND', 3);
    fails(run(['disconnect', 'app', 'c1']), 'ERR_ENDPOINT_IN_USE', 4);
    json(run(['--json', 'disconnect', 'container:c1', 'side']));
    json(run(['--json', 'disconnect', 'container', 'side2']));
    json(run(['--json', 'disconnect', 'app', 'c1']));
    assert.equal(run(['port', 'hw']).stdout, '8000/tcp -> 0.0.0.0:8000\n5300/udp -> 0.0.0.0:5300\n');
  });

  it('bad input: codes and statuses, and nothing changes', async () => {
    const c1 = await makeNetns('c1');
    json(run(['--json', 'connect', 'app', 'c1', '--netns', c1, '-p', '8080:80']));
    const c2 = await makeNetns('c2');
    const state = (): string =>
      JSON.stringify([
        run(['--json', 'network', 'inspect', 'app']).stdout.replace(/"ipForward": \w+/u, ''),
        ipJson(['link', 'show'], h)
          .map((l: any) => l.ifname)
          .sort(),
        ipJson(['link', 'show'], c2).length,
      ]);
    const before = state();
    const cases: [string[], string, number][] = [
      [['connect', 'nope', 'c2', '--netns', c2], 'ERR_NETWORK_NOT_FOUND', 3],
      [['connect', 'app', 'c2', '--netns', 'no-such-ns'], 'ERR_NETNS_NOT_FOUND', 3],
      [['connect', 'app', 'c2', '--netns', '/proc/self/ns/mnt'], 'ERR_NOT_A_NETNS', 5],
      [['connect', 'app', 'c2'], 'ERR_INVALID_ARGUMENT', 5],
      [['connect', 'app', 'c2', '--netns', c2, '-p', '8080:80'], 'ERR_PORT_IN_USE', 4],
      [['connect', 'app', 'c2', '--netns', c2, '-p', '70000:80'], 'ERR_INVALID_PORT', 5],
      [['connect', 'app', 'c2', '--netns', c2, '-p', '80/icmp'], 'ERR_INVALID_PORT', 5],
      [['connect', 'app', 'c2', '--netns', c2, '-p', '8000-8001:80'], 'ERR_INVALID_PORT', 5],
      [['connect', 'app', 'c2', '--netns', c2, '-p', '1.2.3:80:80'], 'ERR_INVALID_IP', 5],
      [['connect', 'app', 'c2', '--netns', c2, '--ip', '172.20.0.2'], 'ERR_ADDRESS_IN_USE', 4],
      [['connect', 'app', 'c2', '--netns', c2, '--ip', '10.0.0.5'], 'ERR_ADDRESS_OUTSIDE_SUBNET', 5],
      [['connect', 'app', 'c2', '--netns', c2, '--ifname', 'a/b'], 'ERR_INVALID_NAME', 5],
      [['connect', 'app', 'c1', '--netns', c2], 'ERR_ENDPOINT_EXISTS', 4],
      [['connect', 'app', '../x', '--netns', c2], 'ERR_INVALID_NAME', 5],
      [['connect', 'app', 'c2', '--netns', c2, '--target', 'c1'], 'ERR_INVALID_ARGUMENT', 5],
      [['disconnect', 'app', 'nobody'], 'ERR_ENDPOINT_NOT_FOUND', 3],
      [['disconnect', 'nope', 'c1'], 'ERR_ENDPOINT_NOT_FOUND', 3],
    ];
    for (const [args, code, status] of cases) {
      fails(run(args), code, status);
      fails(run(['--json', ...args]), code, status);
    }
    assert.equal(state(), before, 'nothing changed');
    // A process on the host holding the port: publishing it would steal its traffic.
    await server(h, 7070, 'host');
    const err = fails(run(['--json', 'connect', 'app', 'c2', '--netns', c2, '-p', '7070:80']), 'ERR_PORT_IN_USE', 4)!;
    assert.match(err.message, /listening socket on the host/u);
  });
});
