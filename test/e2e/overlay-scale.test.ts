/**
 * Overlay at a little scale: three hosts (NetworkHosts in their own namespaces, a shared
 * control-plane directory), 50 containers connected across them all at once. Every container
 * gets a unique address from its own host's block, and containers of the first and the last
 * host talk.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import ipaddr from 'ipaddr.js';
import { NetworkHost } from '../../lib/index';
import { makeWorld } from '../helpers/overlay';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';
import { tcpReach } from '../helpers/traffic';

describe('overlay: 50 concurrent containers across three hosts', function () {
  this.timeout(180000);
  useSandbox();

  it("gives each a unique address from its host's block; the first and last hosts' containers talk", async () => {
    const world = await makeWorld(3);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-ovs-'));
    registerCleanup(() => fs.rmSync(dir, { recursive: true, force: true }), 'dirs');
    const hosts: NetworkHost[] = [];
    for (let i = 0; i < 3; i++) {
      const h = await NetworkHost.open({
        stateDir: path.join(dir, `state${i + 1}`),
        netns: world.hosts[i]!,
        hostId: `host${i + 1}`,
        controlPlane: { dir: path.join(dir, 'cp'), ttl: 5, pollInterval: 100 },
        underlay: { dev: 'eth0' },
        reconcileInterval: 1000,
      });
      registerCleanup(() => h.close(), `close host${i + 1}`);
      hosts.push(h);
    }
    // Every host creates (or joins) the network at once.
    await Promise.all(hosts.map((h) => h.createNetwork({ name: 'ov', driver: 'overlay', subnet: '10.91.0.0/16', vni: 5151 })));
    for (const h of hosts) h.runAgent();
    const nss = await Promise.all(Array.from({ length: 50 }, () => makeNetns('oc')));
    const eps = await Promise.all(nss.map((ns, i) => hosts[i % 3]!.connect('ov', { id: `c${i}`, netns: ns })));
    const ips = eps.map((e) => e.ipv4!.split('/')[0]!);
    assert.equal(new Set(ips).size, 50, `50 unique addresses: ${ips.join(' ')}`);
    for (const ip of ips) assert.ok(ipaddr.parse(ip).match(ipaddr.parseCIDR('10.91.0.0/16')), `${ip} is in the overlay`);
    // Each host's containers come from its own /24 block (the default), and no block is shared.
    const prefixes = eps.map((e, i) => `${i % 3}:${e.ipv4!.split('.').slice(0, 3).join('.')}`);
    const byBlock = new Map<string, Set<number>>();
    for (const p of prefixes) {
      const [h, b] = p.split(':') as [string, string];
      byBlock.set(b, (byBlock.get(b) ?? new Set()).add(Number(h)));
    }
    for (const [b, hs] of byBlock) assert.equal(hs.size, 1, `block ${b} belongs to one host`);
    assert.equal(byBlock.size, 3, 'three hosts, three blocks');
    // c0 is on host1, c2 on host3: across the overlay, once the agents have programmed the peers.
    let reached = false;
    for (let t = 0; t < 20 && !reached; t++) reached = await tcpReach(nss[2]!, nss[0]!, ips[2]!, 7900 + t, 1000);
    assert.ok(reached, `c0 (host1) reaches c2 (host3) at ${ips[2]}`);
  });
});
