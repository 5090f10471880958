/**
 * The Docker plugin's socket against bad input, spoken to directly (raw HTTP, as dockerd would):
 * malformed JSON, unknown fields, wrong types, unknown methods, networks and endpoints it does
 * not know, an overlapping subnet, a port another endpoint holds, an oversized body. Each gets
 * Docker's error reply — `{"Err": "CODE: …"}` with nsnet's code — and changes nothing (nsnet's
 * documents, the firewall's elements, the host's links are compared before and after), and the
 * plugin answers the next request. Only root can reach the socket.
 */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { useSandbox } from '../helpers/sandbox';
import { skipBecause } from '../helpers/skip';
import { Docker, PLUGIN_SOCKET, dockerMissing } from '../helpers/docker';
import { ROOT } from '../helpers/podman';
import { storeDocs } from '../helpers/runtime';

const NET = 'a'.repeat(64);
const EP1 = '1'.repeat(64);
const EP2 = '2'.repeat(64);
const UNKNOWN = 'f'.repeat(64);

describe('the Docker plugin socket', function () {
  this.timeout(120000);
  useSandbox();
  const missing = dockerMissing();
  let dk: Docker;

  beforeEach(async function () {
    if (missing) skipBecause(this, missing);
    dk = await Docker.start({ prefix: 'dks', dockerd: false });
  });

  /** What a bad request may not change: nsnet's documents, the firewall's elements, the links. */
  const snapshot = async (): Promise<unknown> => ({
    docs: ['networks', 'endpoints', 'ports', 'ipam', 'ipam-addr', 'ipam-owner'].map((c) => storeDocs(dk.stateDir, c)),
    elements: (await dk.sandbox.nsnetElementOwners()).sort(),
    links: (await dk.sandbox.links()).sort(),
  });

  it('bad requests get {"Err": "CODE: …"} with nsnet\'s code, change nothing, and the plugin goes on', async () => {
    const net = {
      NetworkID: NET,
      Options: { 'com.docker.network.generic': {} },
      IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '10.85.0.0/24', Gateway: '10.85.0.1/24' }],
      IPv6Data: [],
    };
    const ok = async (method: string, body: unknown): Promise<any> => {
      const r = await dk.request(method, body);
      assert.equal(r.status, 200, `${method}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.Err, undefined);
      return r.body;
    };
    await ok('NetworkDriver.CreateNetwork', net);
    for (const [ep, addr] of [
      [EP1, '10.85.0.2/24'],
      [EP2, '10.85.0.3/24'],
    ] as const) {
      const created = await ok('NetworkDriver.CreateEndpoint', {
        NetworkID: NET,
        EndpointID: ep,
        Interface: { Address: addr, AddressIPv6: '', MacAddress: '' },
        Options: {},
      });
      assert.match(created.Interface.MacAddress, /^02:42:0a:55:00:0[23]$/u, 'the MAC nsnet derives from the address');
      const joined = await ok('NetworkDriver.Join', { NetworkID: NET, EndpointID: ep, SandboxKey: `/run/dk/netns/${ep.slice(0, 12)}`, Options: {} });
      assert.deepEqual(joined.InterfaceName, { SrcName: `nsp${ep.slice(0, 12)}`, DstPrefix: 'eth' });
      assert.equal(joined.Gateway, '10.85.0.1');
    }
    assert.deepEqual(await dk.handedOver(), [`nsp${EP1.slice(0, 12)}`, `nsp${EP2.slice(0, 12)}`], 'the interfaces wait for Docker in the host namespace');
    await ok('NetworkDriver.ProgramExternalConnectivity', {
      NetworkID: NET,
      EndpointID: EP1,
      Options: { 'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 }] },
    });
    assert.deepEqual(
      storeDocs(dk.stateDir, 'ports').map((d) => d.key),
      ['tcp:8080'],
    );

    const before = await snapshot();
    const port8080 = { 'com.docker.network.portmap': [{ Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 }] };
    const cases: [string, string, unknown, number, RegExp][] = [
      ['malformed JSON', 'NetworkDriver.CreateNetwork', '{"NetworkID": "b', 400, /^ERR_INVALID_ARGUMENT: .*not JSON/u],
      ['not an object', 'NetworkDriver.CreateEndpoint', '[1, 2]', 400, /^ERR_INVALID_ARGUMENT: .*JSON object/u],
      [
        'an unknown field',
        'NetworkDriver.CreateNetwork',
        { ...net, NetworkID: 'b'.repeat(64), Bogus: true },
        400,
        /^ERR_INVALID_ARGUMENT: .*unknown field "Bogus"/u,
      ],
      [
        'a field of the wrong type',
        'NetworkDriver.Join',
        { NetworkID: NET, EndpointID: EP1, SandboxKey: 5 },
        400,
        /^ERR_INVALID_ARGUMENT: .*SandboxKey has the wrong type/u,
      ],
      ['a required field missing', 'NetworkDriver.DeleteEndpoint', { NetworkID: NET }, 400, /^ERR_INVALID_ARGUMENT: .*EndpointID is required/u],
      ['a Docker id that is none', 'NetworkDriver.DeleteNetwork', { NetworkID: '../../etc' }, 500, /^ERR_INVALID_ARGUMENT: .*not a Docker id/u],
      ['an unknown method', 'NetworkDriver.Frobnicate', {}, 404, /^ERR_NOT_AVAILABLE: /u],
      ['an unknown network', 'NetworkDriver.DeleteNetwork', { NetworkID: UNKNOWN }, 500, /^ERR_NETWORK_NOT_FOUND: /u],
      [
        'an endpoint on an unknown network',
        'NetworkDriver.CreateEndpoint',
        { NetworkID: UNKNOWN, EndpointID: EP1, Interface: { Address: '10.85.0.9/24' } },
        500,
        /^ERR_NETWORK_NOT_FOUND: /u,
      ],
      [
        'an unknown endpoint (Join)',
        'NetworkDriver.Join',
        { NetworkID: NET, EndpointID: UNKNOWN, SandboxKey: '/run/dk/netns/x' },
        500,
        /^ERR_ENDPOINT_NOT_FOUND: /u,
      ],
      ['an unknown endpoint (DeleteEndpoint)', 'NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: UNKNOWN }, 500, /^ERR_ENDPOINT_NOT_FOUND: /u],
      [
        'an unknown endpoint (ProgramExternalConnectivity)',
        'NetworkDriver.ProgramExternalConnectivity',
        { NetworkID: NET, EndpointID: UNKNOWN, Options: {} },
        500,
        /^ERR_ENDPOINT_NOT_FOUND: /u,
      ],
      [
        'an overlapping subnet (CreateNetwork)',
        'NetworkDriver.CreateNetwork',
        { ...net, NetworkID: 'b'.repeat(64), IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '10.85.0.0/25', Gateway: '10.85.0.1/25' }] },
        500,
        /^ERR_SUBNET_OVERLAP: /u,
      ],
      [
        'an overlapping subnet (RequestPool)',
        'IpamDriver.RequestPool',
        { AddressSpace: 'nsnet', Pool: '10.85.0.0/16', SubPool: '', Options: {}, V6: false },
        500,
        /^ERR_SUBNET_OVERLAP: /u,
      ],
      [
        'an address another endpoint holds',
        'NetworkDriver.CreateEndpoint',
        { NetworkID: NET, EndpointID: 'c'.repeat(64), Interface: { Address: '10.85.0.2/24' } },
        500,
        /^ERR_ADDRESS_IN_USE: /u,
      ],
      [
        'an address outside the subnet',
        'NetworkDriver.CreateEndpoint',
        { NetworkID: NET, EndpointID: 'c'.repeat(64), Interface: { Address: '10.86.0.2/24' } },
        500,
        /^ERR_ADDRESS_OUTSIDE_SUBNET: /u,
      ],
      [
        'a port another container holds',
        'NetworkDriver.ProgramExternalConnectivity',
        { NetworkID: NET, EndpointID: EP2, Options: port8080 },
        500,
        /^ERR_PORT_IN_USE: .*8080/u,
      ],
      [
        'a bad port binding',
        'NetworkDriver.ProgramExternalConnectivity',
        { NetworkID: NET, EndpointID: EP2, Options: { 'com.docker.network.portmap': [{ Proto: 99, Port: 80, HostPort: 9 }] } },
        500,
        /^ERR_INVALID_PORT: /u,
      ],
      [
        'an unknown driver option',
        'NetworkDriver.CreateNetwork',
        { ...net, NetworkID: 'b'.repeat(64), IPv4Data: [{ Pool: '10.87.0.0/24' }], Options: { 'com.docker.network.generic': { 'no.such.option': 'x' } } },
        500,
        /^ERR_INVALID_ARGUMENT: .*no\.such\.option/u,
      ],
      [
        'a pool id nsnet never gave',
        'IpamDriver.RequestAddress',
        { PoolID: 'LocalDefault/10.85.0.0/24', Address: '', Options: {} },
        500,
        /^ERR_INVALID_ARGUMENT: .*PoolID/u,
      ],
      ['a body over 1 MiB', 'NetworkDriver.CreateNetwork', `{"NetworkID": "${'b'.repeat(2 << 20)}"}`, 400, /^ERR_INVALID_ARGUMENT: .*over/u],
    ];
    for (const [what, method, body, status, err] of cases) {
      const r = await dk.request(method, body);
      assert.equal(r.status, status, `${what}: status (${JSON.stringify(r.body).slice(0, 300)})`);
      assert.match(String(r.body.Err), err, `${what}: the error`);
      assert.deepEqual(await snapshot(), before, `${what}: nothing changed`);
      assert.deepEqual((await dk.request('Plugin.Activate', '')).body, { Implements: ['NetworkDriver', 'IpamDriver'] }, `${what}: the plugin goes on`);
    }
    assert.doesNotMatch(dk.pluginLog(), /TypeError|ReferenceError|at .*\.js:\d+/u, "no stack trace in the plugin's log");

    for (const ep of [EP1, EP2]) {
      await ok('NetworkDriver.Leave', { NetworkID: NET, EndpointID: ep });
      await ok('NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: ep });
    }
    await ok('NetworkDriver.DeleteNetwork', { NetworkID: NET });
    assert.deepEqual(storeDocs(dk.stateDir, 'endpoints'), []);
    assert.deepEqual(storeDocs(dk.stateDir, 'ports'), []);
    assert.deepEqual(
      (await dk.sandbox.links()).filter((l) => l.startsWith('ve-') || l.startsWith('nsp') || l.startsWith('nsbr-')),
      [],
      'no veth, handed-over interface or bridge left',
    );
    assert.deepEqual(await dk.sandbox.nsnetElementOwners(), []);
  });

  it('only root reaches the socket (mode 0600, root), and only root runs the plugin', async () => {
    assert.equal((await dk.sandbox.check('stat', ['-c', '%a %U', PLUGIN_SOCKET])).trim(), '600 root');
    const probe = `require('net').connect(${JSON.stringify(PLUGIN_SOCKET)}).on('connect', () => { console.log('connected'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); })`;
    const asNobody = await dk.sandbox.exec('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '-e', probe]);
    assert.equal(asNobody.stdout.trim(), 'EACCES', `a non-root process cannot connect: ${asNobody.stderr}`);
    const asRoot = await dk.sandbox.exec(process.execPath, ['-e', probe]);
    assert.equal(asRoot.stdout.trim(), 'connected', 'root can');
    const plugin = await dk.sandbox.exec('setpriv', [
      '--reuid',
      '65534',
      '--regid',
      '65534',
      '--clear-groups',
      process.execPath,
      path.join(ROOT, 'bin', 'nsnet'),
      '--state-dir',
      '/tmp/nsnet-nobody',
      'docker-plugin',
      '--socket',
      '/tmp/nobody.sock',
    ]);
    assert.equal(plugin.code, 6, plugin.stderr);
    assert.match(plugin.stderr, /ERR_NOT_ROOT|ERR_NOT_READABLE|EACCES/u);
    const twice = await dk.sandbox.exec(process.execPath, [path.join(ROOT, 'bin', 'nsnet'), '--state-dir', dk.stateDir, 'docker-plugin']);
    assert.equal(twice.code, 4, `a second plugin on the same socket is refused: ${twice.stderr}`);
    assert.match(twice.stderr, /ERR_SOCKET_IN_USE/u);
    assert.deepEqual((await dk.request('Plugin.Activate', '')).body, { Implements: ['NetworkDriver', 'IpamDriver'] }, 'the first one still serves');
  });
});
