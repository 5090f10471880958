/**
 * nsnet-cni without the kernel: the CNI_* variables, the configuration, the result shapes of
 * each CNI version, the mapping of nsnet's errors to CNI codes, the daemon's wire format, and
 * run() in process for requests refused before anything is opened.
 */
import * as assert from 'node:assert/strict';
import { NetlinkError, NsnetError } from '../../lib/errors';
import { CniError, toCniError } from '../../lib/cni/codes';
import { decode, parseConfig, parseEnv, staticAddresses, versionAtLeast } from '../../lib/cni/config';
import { run } from '../../lib/cni/plugin';
import { decodeReply, decodeRequest, encodeReply, encodeRequest, frameLength, ProtocolError } from '../../lib/cni/protocol';
import { buildResult } from '../../lib/cni/result';

const codeOf = (fn: () => unknown): number => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CniError, String(e));
    return e.code;
  }
  throw new Error('did not throw');
};

const base = { cniVersion: '1.1.0', name: 'app', type: 'nsnet-cni' };
const ep = {
  id: 'c:eth0',
  network: 'app',
  driver: 'bridge' as const,
  netns: '/run/netns/c',
  ifname: 'eth0',
  mac: '02:42:0a:00:00:02',
  ipv4: '10.0.0.2/24',
  gateway: '10.0.0.1',
  ports: [],
  hostIfname: 've-0123456789ab',
};

describe('nsnet-cni (no kernel)', () => {
  it('reads the CNI_* variables each command needs', () => {
    const add = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web' };
    assert.deepEqual({ ...parseEnv(add).args }, { IgnoreUnknown: '1', K8S_POD_NAME: 'web' });
    assert.equal(parseEnv({ ...add, CNI_COMMAND: 'DEL', CNI_NETNS: '' }).netns, undefined, 'DEL may come without a namespace');
    assert.equal(parseEnv({ CNI_COMMAND: 'GC' }).command, 'GC');
    for (const env of [
      {},
      { CNI_COMMAND: 'add' },
      { ...add, CNI_CONTAINERID: '-x' },
      { ...add, CNI_CONTAINERID: 'a'.repeat(113) },
      { ...add, CNI_IFNAME: 'a:b' },
      { ...add, CNI_NETNS: undefined },
      { ...add, CNI_ARGS: '=x' },
    ]) {
      assert.equal(
        codeOf(() => parseEnv(env)),
        4,
        JSON.stringify(env),
      );
    }
  });

  it('validates the configuration: codes 6, 7 and 2', () => {
    assert.equal(
      codeOf(() => decode('')),
      6,
    );
    assert.equal(
      codeOf(() => decode('{')),
      6,
    );
    assert.equal(
      codeOf(() => decode('"x"')),
      7,
    );
    assert.equal(
      codeOf(() => decode('{"a":{"b":[{"__proto__":{}}]}}')),
      7,
    );
    assert.equal(
      codeOf(() => parseConfig({ ...base, ipMasq: true }, '1.1.0')),
      2,
    );
    assert.equal(
      codeOf(() => parseConfig({ ...base, icc: 'yes' }, '1.1.0')),
      7,
    );
    assert.equal(
      codeOf(() => parseConfig({ ...base, dns: { nameservers: '1.1.1.1' } }, '1.1.0')),
      7,
    );
    assert.equal(
      codeOf(() => parseConfig({ ...base, runtimeConfig: { ips: ['10.0.0.5', '10.0.0.6'] } }, '1.1.0')),
      7,
    );
    const c = parseConfig(
      {
        ...base,
        'example.com/extension': { x: 1 },
        subnet: '10.0.0.0/24',
        mtu: 1400,
        runtimeConfig: {
          portMappings: [
            { hostPort: 80, containerPort: 8080, protocol: 'TCP', hostIP: '' },
            { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '10.0.0.9' },
          ],
          ips: ['10.0.0.5/24'],
          bandwidth: { ingressRate: 1 },
        },
        dns: { nameservers: ['10.0.0.1'], search: ['svc'] },
        'cni.dev/attachments': [{ containerID: 'a', ifname: 'eth0' }],
      },
      '1.1.0',
    );
    assert.deepEqual(c.network, { subnet: '10.0.0.0/24', mtu: 1400 });
    assert.equal(c.stateDir, '/var/lib/nsnet');
    assert.deepEqual(c.portMappings, [
      { protocol: 'tcp', hostPort: 80, containerPort: 8080 },
      { protocol: 'udp', hostPort: 53, containerPort: 53, hostIp: '10.0.0.9' },
    ]);
    assert.deepEqual(c.ips, { ipv4: '10.0.0.5' });
    // hostIP as portmap reads it: '' every address; 0.0.0.0 IPv4 only; an IPv6 address (:: too) IPv6 only.
    const hostIps = parseConfig(
      {
        ...base,
        runtimeConfig: {
          portMappings: ['', '0.0.0.0', '::', '2001:DB8:0::1', '10.0.0.9'].map((hostIP, i) => ({ hostPort: 80 + i, containerPort: 80, hostIP })),
        },
      },
      '1.1.0',
    );
    assert.deepEqual(
      hostIps.portMappings.map((p) => p.hostIp),
      [undefined, '0.0.0.0', '::', '2001:db8::1', '10.0.0.9'],
    );
    assert.equal(
      codeOf(() => parseConfig({ ...base, runtimeConfig: { portMappings: [{ hostPort: 80, containerPort: 80, hostIP: 'fe80::x' }] } }, '1.1.0')),
      7,
    );
    assert.deepEqual(c.validAttachments, [{ containerID: 'a', ifname: 'eth0' }]);
    assert.ok(versionAtLeast('1.0.0', '0.4.0') && !versionAtLeast('0.3.1', '0.4.0') && versionAtLeast('1.1.0', '1.1.0'));
  });

  it("static addresses: runtimeConfig.ips and CNI_ARGS IP (podman's --ip) merged; the same address twice is one; DEL reads neither", () => {
    const env = (args: string) => parseEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc', CNI_NETNS: '/run/netns/x', CNI_IFNAME: 'eth0', CNI_ARGS: args });
    const conf = (ips?: string[]) => parseConfig({ ...base, ...(ips ? { runtimeConfig: { ips } } : {}) }, '1.1.0');
    assert.deepEqual(conf(['10.0.0.5', '10.0.0.5/24', 'fd00::5']).ips, { ipv4: '10.0.0.5', ipv6: 'fd00::5' }, "podman's reload passes the address twice");
    assert.deepEqual(staticAddresses(conf(), env('IgnoreUnknown=1;K8S_POD_NAME=a;IP=10.0.0.7')), { ipv4: '10.0.0.7' });
    assert.deepEqual(staticAddresses(conf(), env('IP=10.0.0.7/24,fd00::7')), { ipv4: '10.0.0.7', ipv6: 'fd00::7' }, 'comma-separated, with prefixes');
    assert.deepEqual(staticAddresses(conf(['10.0.0.7']), env('IP=10.0.0.7')), { ipv4: '10.0.0.7' });
    assert.deepEqual(staticAddresses(conf(['fd00::8']), env('IP=10.0.0.7')), { ipv4: '10.0.0.7', ipv6: 'fd00::8' });
    assert.deepEqual(staticAddresses(conf(), env('IP=')), {});
    assert.deepEqual(staticAddresses(conf(), env('K8S_POD_NAME=a')), {});
    assert.equal(
      codeOf(() => staticAddresses(conf(['10.0.0.8']), env('IP=10.0.0.7'))),
      7,
      'two different IPv4 addresses',
    );
    assert.equal(
      codeOf(() => staticAddresses(conf(), env('IP=10.0.0.7,10.0.0.9'))),
      7,
    );
    assert.equal(
      codeOf(() => staticAddresses(conf(), env('IP=10.0.0.300'))),
      4,
      'a malformed CNI_ARGS IP',
    );
    assert.match(
      (() => {
        try {
          staticAddresses(conf(['10.0.0.8']), env('IP=10.0.0.7'));
        } catch (e) {
          return (e as Error).message;
        }
        return '';
      })(),
      /CNI_ARGS IP asks for 10\.0\.0\.7 while 10\.0\.0\.8 is asked for too/u,
    );
    const del = parseConfig({ ...base, runtimeConfig: { ips: ['10.0.0.5', '10.0.0.6'], portMappings: [{ hostPort: 0, containerPort: 80 }] } }, '1.1.0', 'DEL');
    assert.deepEqual({ ips: del.ips, ports: del.portMappings }, { ips: {}, ports: [] }, 'DEL does not read what it does not use');
  });

  it('prints results in the shape of each version and merges a prevResult', () => {
    const a = { endpoint: ep, hostMac: '6a:00:00:00:00:01', mtu: 1500, internal: false, sandbox: '/run/netns/c' };
    const r11 = buildResult('1.1.0', a, undefined);
    assert.deepEqual(r11, {
      cniVersion: '1.1.0',
      interfaces: [
        { name: 've-0123456789ab', mac: '6a:00:00:00:00:01', mtu: 1500 },
        { name: 'eth0', mac: '02:42:0a:00:00:02', mtu: 1500, sandbox: '/run/netns/c' },
      ],
      ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 1 }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }],
      dns: {},
    });
    const r031 = buildResult('0.3.1', { ...a, internal: true }, { nameservers: ['10.0.0.1'] });
    assert.deepEqual(r031.ips, [{ version: '4', address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 1 }]);
    assert.deepEqual(r031.routes, [], 'an internal network has no default route');
    assert.equal(r031.interfaces[1]!.mtu, undefined);
    assert.deepEqual(r031.dns, { nameservers: ['10.0.0.1'] });
    const merged = buildResult('1.0.0', a, undefined, {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'lo0' }],
      ips: [{ address: '192.0.2.1/32', interface: 0 }],
      routes: [],
      dns: { domain: 'x' },
    });
    assert.deepEqual(
      merged.interfaces.map((i) => i.name),
      ['lo0', 've-0123456789ab', 'eth0'],
    );
    assert.deepEqual(
      merged.ips.map((i) => i.interface),
      [0, 2],
    );
    assert.deepEqual(merged.dns, { domain: 'x' });
  });

  it('maps nsnet errors to CNI codes', () => {
    const code = (e: unknown): number => toCniError(e).code;
    assert.equal(code(new NsnetError('ERR_PORT_IN_USE', 'x')), 101);
    assert.equal(code(new NsnetError('ERR_SUBNET_FULL', 'x')), 102);
    assert.equal(code(new NsnetError('ERR_ENDPOINT_EXISTS', 'x')), 104);
    assert.equal(code(new NsnetError('ERR_NETNS_NOT_FOUND', 'x')), 3);
    assert.equal(code(new NsnetError('ERR_STORE_IO', 'x')), 5);
    assert.equal(code(new NsnetError('ERR_INVALID_CIDR', 'x')), 7);
    assert.equal(code(new NetlinkError({ errno: 17, code: 'EEXIST', operation: 'RTM_NEWLINK' })), 103);
    assert.equal(code(new Error('boom')), 100);
    assert.equal(toCniError(new NsnetError('ERR_PORT_IN_USE', 'x')).details, 'ERR_PORT_IN_USE');
  });

  it('encodes and decodes the daemon protocol, refusing malformed frames', () => {
    const req = { pid: 42, netnsInode: 4026531840, env: { CNI_COMMAND: 'ADD', CNI_ARGS: 'A=b=c' }, stdin: Buffer.from('{"x":"é"}') };
    const buf = encodeRequest(req);
    assert.equal(frameLength(buf), buf.length);
    assert.equal(frameLength(buf.subarray(0, 10)), undefined, 'header incomplete');
    const back = decodeRequest(buf);
    assert.deepEqual({ ...back, env: { ...back.env }, stdin: back.stdin.toString() }, { ...req, stdin: req.stdin.toString() });
    const rep = { status: 0, exitCode: 1, stdout: Buffer.from('out'), stderr: Buffer.from('err') };
    assert.deepEqual(decodeReply(encodeReply(rep)), rep);
    assert.throws(() => frameLength(Buffer.from('XXXXXXXX\x01\0\0\0\0\0\0\0', 'latin1')), ProtocolError);
    assert.throws(() => decodeRequest(encodeRequest({ ...req, env: { HOME: '/root' } })), ProtocolError);
    assert.throws(() => decodeRequest(Buffer.concat([buf, Buffer.from('x')])), ProtocolError);
  });

  it('run(): VERSION, and requests refused before anything is opened', async () => {
    // The versions up to the caller's: podman 4.3's libcni asks with 1.0.0 and cannot read 1.1.0 results.
    const v = await run({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.3.1"}');
    assert.deepEqual(JSON.parse(v.stdout), { cniVersion: '0.3.1', supportedVersions: ['0.3.0', '0.3.1'] });
    const all = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
    for (const [stdin, cniVersion, listed] of [
      ['{"cniVersion":"1.0.0"}', '1.0.0', ['0.3.0', '0.3.1', '0.4.0', '1.0.0']],
      ['{"cniVersion":"1.1.0"}', '1.1.0', all],
      ['{"cniVersion":"1.2.0"}', '1.1.0', all],
      ['{"cniVersion":"0.2.0"}', '1.1.0', all],
      ['{"cniVersion":"x"}', '1.1.0', all],
      ['', '1.1.0', all],
      ['nope', '1.1.0', all],
    ] as [string, string, string[]][]) {
      assert.deepEqual(
        JSON.parse((await run({ CNI_COMMAND: 'VERSION' }, stdin)).stdout),
        { cniVersion, supportedVersions: listed },
        `VERSION with ${JSON.stringify(stdin)}`,
      );
    }
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc', CNI_NETNS: '/run/netns/none', CNI_IFNAME: 'eth0' };
    for (const [stdin, code, version] of [
      ['not json', 6, '1.1.0'],
      ['{"cniVersion":"0.1.0","name":"a","type":"t"}', 1, '1.1.0'],
      ['{"cniVersion":"0.4.0","type":"t"}', 7, '0.4.0'],
    ] as [string, number, string][]) {
      const r = await run(env, stdin);
      assert.equal(r.exitCode, 1);
      const err = JSON.parse(r.stdout);
      assert.equal(err.code, code, r.stdout);
      assert.equal(err.cniVersion, version, "the error speaks the request's version when it can");
      assert.match(r.stderr, /^nsnet-cni: /u);
    }
    assert.equal(JSON.parse((await run({}, '')).stdout).code, 4);
  });
});
