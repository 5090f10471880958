/**
 * The façade's state helpers without a kernel: record checks (what counts as a damaged
 * record), the port ledger's merging of claims into ranges, reading a network's settings and an
 * endpoint's ports back from firewall elements, and the warnings' wording.
 */
import * as assert from 'node:assert/strict';
import type { OwnedElement } from '../../lib/firewall/firewall';
import { networkSettingsOf, publishedPortsOf } from '../../lib/firewall/recover';
import { checkEndpoint, checkNetwork, splitEpKey } from '../../lib/state/collections';
import { damageProblem, damageWarning } from '../../lib/state/damage';
import { coalesce } from '../../lib/state/ledger';

const el = (set: string, key: unknown, comment: string, value?: unknown): OwnedElement => ({
  family: 'inet',
  table: 'nsnet',
  set,
  key,
  comment,
  ...(value !== undefined ? { value } : {}),
});

describe('state helpers', () => {
  it('record checks accept every record shape nsnet writes and refuse others, saying why', () => {
    assert.equal(checkNetwork({ name: 'host', driver: 'host', labels: {}, created: 'x' }, 'host'), undefined);
    assert.equal(checkNetwork({ name: 'app', driver: 'bridge', subnet: '10.0.0.0/24', gateway: '10.0.0.1', bridge: 'br0' }, 'app'), undefined);
    assert.equal(checkNetwork({ name: 'lan', driver: 'macvlan', subnet: '10.0.0.0/24', gateway: '10.0.0.1', parent: 'eth0' }, 'lan'), undefined);
    assert.match(checkNetwork(null, 'app')!, /not an object/u);
    assert.match(checkNetwork({ name: 'web', driver: 'bridge' }, 'app')!, /its name is "web"/u);
    assert.match(checkNetwork({ name: 'app', driver: 'weird' }, 'app')!, /driver "weird"/u);
    assert.match(checkNetwork({ name: 'app', driver: 'bridge', subnet: '10.0.0.0/24', gateway: '10.0.0.1' }, 'app')!, /no bridge/u);
    assert.equal(checkEndpoint({ id: 'c1', network: 'app', ports: [] }, 'app/c1'), undefined);
    assert.match(checkEndpoint({ id: 'c1', network: 'app', ports: [] }, 'app/c2')!, /not the record of endpoint app\/c2/u);
    assert.match(checkEndpoint({ id: 'c1', network: 'app' }, 'app/c1')!, /no ports/u);
    assert.deepEqual(splitEpKey('app/c1:x/y'), { network: 'app', id: 'c1:x/y' });
    assert.equal(splitEpKey('app'), undefined);
    assert.equal(splitEpKey('/c1'), undefined);
  });

  it('coalesce merges runs of ports into ranges (same protocol and address, both sides running on)', () => {
    const p = (protocol: 'tcp' | 'udp', hostPort: number, containerPort: number, hostIp?: string) => ({
      protocol,
      hostPort,
      containerPort,
      ...(hostIp ? { hostIp } : {}),
    });
    assert.deepEqual(
      coalesce([p('tcp', 9001, 81), p('udp', 53, 53), p('tcp', 9000, 80), p('tcp', 9002, 82), p('tcp', 9003, 90), p('tcp', 9004, 91, '127.0.0.1')]),
      [
        { protocol: 'tcp', hostPort: 9000, containerPort: 80, hostPortEnd: 9002 },
        { protocol: 'tcp', hostPort: 9003, containerPort: 90 },
        { protocol: 'tcp', hostPort: 9004, containerPort: 91, hostIp: '127.0.0.1' },
        { protocol: 'udp', hostPort: 53, containerPort: 53 },
      ],
    );
    assert.deepEqual(coalesce([p('tcp', 80, 80), p('tcp', 80, 80)]), [p('tcp', 80, 80)], 'a repeated port once');
  });

  it("a network's settings and an endpoint's ports are read back from the elements they own", () => {
    const owned = new Map<string, OwnedElement[]>([
      [
        'net:app',
        [
          el('bridges', 'br-app', 'net:app'),
          el('icc', ['br-app', 'br-app'], 'net:app'),
          el('hairpin', ['172.20.0.0/16', 'br-app'], 'net:app'),
          el('masq_subnets', '172.20.0.0/16', 'net:app'),
        ],
      ],
      [
        'net:back',
        [
          el('bridges', 'br-back', 'net:back'),
          el('noicc_bridges', 'br-back', 'net:back'),
          el('internal', 'br-back', 'net:back'),
          el('internal_subnets', '172.28.0.0/24', 'net:back'),
        ],
      ],
      [
        'net:plain',
        [el('bridges', 'br-plain', 'net:plain'), el('icc', ['br-plain', 'br-plain'], 'net:plain'), el('hairpin', ['172.30.0.0/24', 'br-plain'], 'net:plain')],
      ],
      [
        'net:ov',
        [
          el('bridges', 'ovbr', 'net:ov'),
          el('bridges', 'ovx', 'net:ov'),
          el('icc', ['ovbr', 'ovbr'], 'net:ov'),
          el('icc', ['ovbr', 'ovx'], 'net:ov'),
          el('icc', ['ovx', 'ovbr'], 'net:ov'),
        ],
      ],
      [
        'ep:c1',
        [
          el('published_any', ['tcp', 8080], 'ep:c1', ['172.20.0.2', 80]),
          el('published_hostip', ['127.0.0.1', 'udp', 53], 'ep:c1', ['172.20.0.2', 53]),
          el('noicc_ports', 've-x', 'ep:c1'),
        ],
      ],
    ]);
    assert.deepEqual(networkSettingsOf(owned, 'app'), { bridge: 'br-app', subnet: '172.20.0.0/16', icc: true, internal: false, ipMasquerade: true });
    assert.deepEqual(networkSettingsOf(owned, 'back'), { bridge: 'br-back', subnet: '172.28.0.0/24', icc: false, internal: true, ipMasquerade: true });
    assert.deepEqual(networkSettingsOf(owned, 'plain'), { bridge: 'br-plain', subnet: '172.30.0.0/24', icc: true, internal: false, ipMasquerade: false });
    assert.deepEqual(networkSettingsOf(owned, 'ov'), { bridge: 'ovbr', icc: true, internal: false, ipMasquerade: false, vxlan: 'ovx' });
    assert.equal(networkSettingsOf(owned, 'gone'), undefined);
    assert.deepEqual(publishedPortsOf(owned, 'c1'), [
      { family: 4, protocol: 'tcp', hostPort: 8080, containerIp: '172.20.0.2', containerPort: 80 },
      { family: 4, hostIp: '127.0.0.1', protocol: 'udp', hostPort: 53, containerIp: '172.20.0.2', containerPort: 53 },
    ]);
    assert.deepEqual(publishedPortsOf(owned, 'c2'), []);
  });

  it('a warning and a reconcile problem name the file and what the document stood for', () => {
    const d = { collection: 'endpoints', key: 'app/c1', file: '/s/endpoints/app%2Fc1.json', reason: 'empty file' };
    const w = damageWarning(d);
    assert.equal(w.code, 'WARN_STORE_DAMAGED');
    assert.equal(
      w.message,
      'state store file /s/endpoints/app%2Fc1.json is damaged (empty file): endpoint c1 of network app is left out; `nsnet gc` (NetworkHost.gc()) repairs it',
    );
    assert.deepEqual(damageProblem(w), { network: 'app', endpoint: 'c1', code: 'ERR_STORE_CORRUPT', message: w.message, file: d.file });
    assert.deepEqual(damageProblem(damageWarning({ collection: 'networks', key: 'web', file: '/s/networks/web.json', reason: 'x' })).network, 'web');
    assert.match(damageWarning({ collection: 'ports', file: '/s/ports/~ab.json', reason: 'x' }).message, /: a document of ports is left out/u);
  });
});
