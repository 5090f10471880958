/** `nsnet network …` as a process, against a host namespace the test made. */
import * as assert from 'node:assert/strict';
import { makeNetns, useSandbox } from '../helpers/sandbox';
import { ipJson, sh } from '../helpers/oracle';
import { type Result, cli, fails, json, nsnet, stateDir } from './run';

describe('cli: network', function () {
  this.timeout(60000);
  useSandbox();
  let h: string;
  let run: (args: string[]) => Result;

  beforeEach(async () => {
    h = await makeNetns('nh');
    run = cli(stateDir(), h);
  });

  it('create prints a table (and the record with --json); the bridge exists in the host namespace', () => {
    const r = run(['network', 'create', '--subnet', '172.20.0.0/16', '--gateway', '172.20.0.1', '--mtu', '1400', '--icc=false', '-o', 'bridge=br-app', 'app']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.deepEqual(lines[0]!.split(/\s{2,}/u), ['NAME', 'DRIVER', 'SUBNET', 'GATEWAY', 'DEVICE', 'DNS', 'ENDPOINTS', 'OPTIONS']);
    assert.deepEqual(lines[1]!.split(/\s{2,}/u), ['app', 'bridge', '172.20.0.0/16', '172.20.0.1', 'br-app', 'on', '0', 'icc=false,mtu=1400']);
    const link = ipJson(['-d', 'link', 'show', 'br-app'], h)[0];
    assert.equal(link.mtu, 1400);
    assert.equal(link.linkinfo.info_kind, 'bridge');
    assert.ok(ipJson(['addr', 'show', 'br-app'], h)[0].addr_info.some((a: any) => a.local === '172.20.0.1' && a.prefixlen === 16));

    const doc = json(
      run([
        '--json',
        'network',
        'create',
        '--internal',
        '--subnet',
        '172.21.0.0/24',
        '--subnet',
        'fd00:21::/64',
        '--ip-range',
        '172.21.0.128/25',
        '--label',
        'team=a',
        'back',
      ]),
    );
    assert.deepEqual(
      { ...doc, created: undefined, bridge: undefined },
      {
        name: 'back',
        driver: 'bridge',
        subnet: '172.21.0.0/24',
        gateway: '172.21.0.1',
        ipRange: '172.21.0.128/25',
        subnet6: 'fd00:21::/64',
        gateway6: 'fd00:21::1',
        mtu: 1500,
        icc: true,
        internal: true,
        ipMasquerade: true,
        labels: { team: 'a' },
        created: undefined,
        bridge: undefined,
      },
    );
    assert.match(doc.bridge, /^nsbr-[0-9a-f]{10}$/u);
  });

  it('ls: a table with the predefined networks, -q names, --json the records', () => {
    json(run(['--json', 'network', 'create', '--subnet', '172.22.0.0/16', 'app']));
    const t = run(['network', 'ls'])
      .stdout.trimEnd()
      .split('\n')
      .map((l) => l.split(/\s{2,}/u));
    assert.deepEqual(
      t.map((r) => r[0]),
      ['NAME', 'app', 'bridge', 'container', 'host', 'none'],
    );
    assert.deepEqual(t[1], ['app', 'bridge', '172.22.0.0/16', '172.22.0.1', t[1]![4], 'on', '0', '-'], 'a user network has DNS');
    assert.deepEqual(t[2], ['bridge', 'bridge', '172.17.0.0/16', '172.17.0.1', 'nsnet0', 'off', '0', '-'], "the predefined bridge has none, as Docker's");
    assert.deepEqual(t[4], ['host', 'host', '-', '-', '-', '-', '0', '-']);
    assert.equal(run(['network', 'ls', '-q']).stdout, 'app\nbridge\ncontainer\nhost\nnone\n');
    const docs = json(run(['network', 'ls', '--json']));
    assert.deepEqual(
      docs.map((n: any) => [n.name, n.driver]),
      [
        ['app', 'bridge'],
        ['bridge', 'bridge'],
        ['container', 'container'],
        ['host', 'host'],
        ['none', 'none'],
      ],
    );
  });

  it('inspect: a block per network; --json the NetworkInspect objects; one missing name fails it all', () => {
    json(run(['--json', 'network', 'create', '--subnet', '172.23.0.0/16', 'app']));
    const r = run(['network', 'inspect', 'app']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Name: +app$/mu);
    assert.match(r.stdout, /^Subnet: +172\.23\.0\.0\/16$/mu);
    assert.match(r.stdout, /^Bridge up: +yes$/mu);
    assert.match(r.stdout, /^DNS: +on, other names through the host's resolv\.conf$/mu);
    assert.match(r.stdout, /^Endpoints: none$/mu);
    const docs = json(run(['--json', 'network', 'inspect', 'app', 'host']));
    assert.equal(docs.length, 2);
    assert.equal(docs[0].bridgeUp, true);
    assert.equal(docs[0].ipForward, true);
    assert.deepEqual(docs[0].endpoints, []);
    assert.ok(
      docs[1].interfaces.some((i: any) => i.name === 'lo'),
      "host: the host namespace's interfaces",
    );
    const e = fails(run(['--json', 'network', 'inspect', 'app', 'nope']), 'ERR_NETWORK_NOT_FOUND', 3)!;
    assert.deepEqual(e.details, { network: 'nope' });
  });

  it('macvlan: -d macvlan -o parent=… (and --parent)', () => {
    sh('ip', ['-n', h, 'link', 'add', 'uplink0', 'type', 'veth', 'peer', 'name', 'uplink1']);
    const doc = json(run(['--json', 'network', 'create', '-d', 'macvlan', '-o', 'parent=uplink0', '-o', 'mode=private', '--subnet', '192.168.50.0/24', 'lan']));
    assert.deepEqual([doc.driver, doc.parent, doc.mode, doc.gateway], ['macvlan', 'uplink0', 'private', '192.168.50.1']);
    const t = run(['network', 'ls']).stdout;
    assert.match(
      t,
      /^lan +macvlan +192\.168\.50\.0\/24 +192\.168\.50\.1 +uplink0 \(private\) +off /mu,
      'macvlan: no DNS (its containers cannot reach the host)',
    );
    fails(run(['network', 'create', '-d', 'macvlan', '--parent', 'nosuch0', '--subnet', '192.168.51.0/24', 'lan2']), 'ERR_PARENT_NOT_FOUND', 3);
    fails(run(['network', 'create', '-d', 'macvlan', '--subnet', '192.168.52.0/24', 'lan3']), 'ERR_INVALID_ARGUMENT', 5);
  });

  it('rm: removes, prints the names; refuses in-use and predefined networks; partial failures report what went', async () => {
    json(run(['--json', 'network', 'create', '--subnet', '172.24.0.0/16', 'a']));
    json(run(['--json', 'network', 'create', '--subnet', '172.25.0.0/16', 'b']));
    json(run(['--json', 'network', 'create', '--subnet', '172.26.0.0/16', 'c']));
    const bridgeOf = (n: string): string => json(run(['--json', 'network', 'inspect', n]))[0].bridge;
    const ba = bridgeOf('a');
    const r = run(['network', 'rm', 'a']);
    assert.deepEqual([r.status, r.stdout, r.stderr], [0, 'a\n', '']);
    assert.deepEqual(
      ipJson(['link', 'show'], h).filter((l: any) => l.ifname === ba),
      [],
      'the bridge is gone',
    );
    const c = await makeNetns('nc');
    json(run(['--json', 'connect', 'c', 'c1', '--netns', c]));
    const partial = run(['--json', 'network', 'rm', 'b', 'nope', 'c']);
    const err = fails(partial, 'ERR_NETWORK_IN_USE', 4)!;
    assert.deepEqual(JSON.parse(partial.stdout).removed, ['b']);
    assert.match(partial.stderr, /^nsnet: ERR_NETWORK_NOT_FOUND: network nope does not exist\nnsnet: ERR_NETWORK_IN_USE: /u, 'one line per failure, in order');
    assert.deepEqual(err.details, { network: 'c' });
    const human = run(['network', 'rm', 'nope2', 'bridge']);
    fails(human, 'ERR_INVALID_ARGUMENT', 5);
    assert.equal(human.stdout, '');
  });

  it('bad input: codes and statuses, and nothing is created', () => {
    json(run(['--json', 'network', 'create', '--subnet', '172.27.0.0/16', 'app']));
    const links = (): string[] =>
      ipJson(['link', 'show'], h)
        .map((l: any) => l.ifname)
        .sort();
    const before = [links(), run(['--json', 'network', 'ls']).stdout];
    const cases: [string[], string, number][] = [
      [['network', 'create', 'app'], 'ERR_NETWORK_EXISTS', 4],
      [['network', 'create', 'bridge'], 'ERR_NETWORK_EXISTS', 4],
      [['network', 'create', '--subnet', '172.27.5.0/24', 'other'], 'ERR_SUBNET_OVERLAP', 4],
      [['network', 'create', '--subnet', '300.1.1.0/24', 'x'], 'ERR_INVALID_CIDR', 5],
      [['network', 'create', '--subnet', '10.9.0.0/16', '--gateway', '10.10.0.1', 'x'], 'ERR_GATEWAY_OUTSIDE_SUBNET', 5],
      [['network', 'create', 'bad/name'], 'ERR_INVALID_NAME', 5],
      [['network', 'create', '--mtu', 'big', 'x'], 'ERR_INVALID_MTU', 5],
      [['network', 'create', '--mtu', '40', 'x'], 'ERR_INVALID_MTU', 5],
      [['network', 'create', '-o', 'color=blue', 'x'], 'ERR_INVALID_ARGUMENT', 5],
      [['network', 'create', '--icc=sometimes', 'x'], 'ERR_INVALID_ARGUMENT', 5],
      [['network', 'create', '-d', 'ipvlan', 'x'], 'ERR_INVALID_ARGUMENT', 5],
      [['network', 'create', '-d', 'overlay', '--vni', '42', 'x'], 'ERR_NO_CONTROL_PLANE', 7],
      [['network', 'rm', 'nope'], 'ERR_NETWORK_NOT_FOUND', 3],
      [['network', 'inspect', 'nope'], 'ERR_NETWORK_NOT_FOUND', 3],
    ];
    for (const [args, code, status] of cases) {
      fails(run(args), code, status);
      fails(run(['--json', ...args]), code, status);
    }
    assert.deepEqual([links(), run(['--json', 'network', 'ls']).stdout], before, 'nothing changed');
  });

  it('global options also come from NSNET_STATE_DIR / NSNET_HOST_NETNS; a missing host namespace is ERR_NETNS_NOT_FOUND', () => {
    const dir = stateDir();
    json(nsnet(['--json', 'network', 'create', '--subnet', '172.28.0.0/16', 'envnet'], { NSNET_STATE_DIR: dir, NSNET_HOST_NETNS: h }));
    assert.deepEqual(
      json(run(['--json', 'network', 'ls']))
        .map((n: any) => n.name)
        .includes('envnet'),
      false,
      'another state dir',
    );
    assert.deepEqual(
      json(cli(dir, h)(['--json', 'network', 'ls']))
        .map((n: any) => n.name)
        .includes('envnet'),
      true,
    );
    assert.ok(ipJson(['link', 'show'], h).some((l: any) => l.ifname.startsWith('nsbr-')));
    fails(cli(stateDir(), 'no-such-host')(['network', 'ls']), 'ERR_NETNS_NOT_FOUND', 3);
    fails(cli(stateDir(), '/proc/self/ns/mnt')(['network', 'ls']), 'ERR_NOT_A_NETNS', 5);
  });
});
