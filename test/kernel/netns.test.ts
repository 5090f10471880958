/**
 * Named namespaces, opening namespaces every way, isolation between handles, and sysctls.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { Netlink, Netns, NsnetError } from '../../lib/index';
import { makeNetns, uniqueName, useSandbox } from '../helpers/sandbox';
import { ipJson, sh } from '../helpers/oracle';

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: any) => {
    assert.ok(e instanceof NsnetError, `an NsnetError, got ${e}`);
    assert.equal(e.code, code, e.message);
    return true;
  });
}

const ipNetns = (): string[] => (sh('ip', ['-j', 'netns', 'list']).trim() ? JSON.parse(sh('ip', ['-j', 'netns', 'list'])).map((n: any) => n.name) : []);

describe('namespaces', () => {
  useSandbox();
  it('creates a named namespace that ip netns sees, with loopback up, and removes it', async () => {
    const name = uniqueName('nsc');
    try {
      await Netns.create(name);
      assert.ok(ipNetns().includes(name));
      assert.ok(await Netns.exists(name));
      assert.ok((await Netns.list()).includes(name));
      const lo = ipJson(['link', 'show', 'lo'], name)[0];
      assert.ok(lo.flags.includes('UP'), 'loopback is up');
      assert.equal(ipJson(['link', 'show'], name).length, 1, 'nothing but loopback');
      await rejects(Netns.create(name), 'ERR_NETNS_EXISTS');
    } finally {
      await Netns.remove(name).catch(() => undefined);
    }
    assert.ok(!ipNetns().includes(name));
    assert.equal(await Netns.exists(name), false);
    await rejects(Netns.remove(name), 'ERR_NETNS_NOT_FOUND');
  });

  it('refuses bad names without touching anything', async () => {
    const before = ipNetns();
    for (const bad of ['', '.', '..', 'a/b', '../etc', 'x'.repeat(65), 'a b', 'a\nb', '-x']) await rejects(Netns.create(bad), 'ERR_INVALID_NAME');
    assert.deepEqual(ipNetns(), before);
  });

  it('opens a namespace by name, path, pid and fd: all reach the same one', async () => {
    const name = await makeNetns('nso');
    const sleeper = spawn('ip', ['netns', 'exec', name, 'sleep', '30'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 200));
      // `ip netns exec` execs sleep: the child pid is in the namespace.
      const pid = sleeper.pid!;
      const fd = fs.openSync(`/var/run/netns/${name}`, 'r');
      try {
        const handles = [
          await Netlink.open({ netns: name }),
          await Netlink.open({ netns: `/var/run/netns/${name}` }),
          await Netlink.open({ netns: pid }),
          await Netlink.open({ netns: { pid } }),
          await Netlink.open({ netns: { fd } }),
        ];
        const inodes = new Set(handles.map((h) => h.netnsInode));
        assert.equal(inodes.size, 1);
        await handles[2]!.links.add({ kind: 'bridge', name: 'viapid' });
        for (const h of handles) {
          assert.ok((await h.links.find('viapid')) !== undefined);
          h.close();
        }
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('says clearly when a namespace reference is wrong', async () => {
    await rejects(Netlink.open({ netns: 'no-such-ns' }), 'ERR_NETNS_NOT_FOUND');
    await rejects(Netlink.open({ netns: '/etc/hostname' }), 'ERR_NOT_A_NETNS');
    await rejects(Netlink.open({ netns: '/proc/self/ns/mnt' }), 'ERR_NOT_A_NETNS');
    await rejects(Netlink.open({ netns: 4194303 }), 'ERR_NETNS_NOT_FOUND');
    await rejects(Netlink.open({ netns: 'relative/path' }), 'ERR_INVALID_NETNS');
    await rejects(Netlink.open({ netns: -1 }), 'ERR_INVALID_NETNS');
    await rejects(Netlink.open({ netns: { nope: 1 } as never }), 'ERR_INVALID_NETNS');
  });

  it('a handle opened on namespace A never touches namespace B', async () => {
    const a = await makeNetns('nsa');
    const b = await makeNetns('nsb');
    const ha = await Netlink.open({ netns: a });
    try {
      const before = JSON.stringify(ipJson(['link', 'show'], b));
      await ha.links.add({ kind: 'bridge', name: 'onlya' });
      await ha.links.set('lo', { mtu: 1500 });
      assert.equal(ipJson(['link', 'show', 'onlya'], a)[0].ifname, 'onlya');
      assert.equal(JSON.stringify(ipJson(['link', 'show'], b)), before);
      // and not the namespace the tests run in
      assert.ok(!ipJson(['link', 'show']).some((l: any) => l.ifname === 'onlya'));
    } finally {
      ha.close();
    }
  });

  it('reads and writes net.* sysctls inside a namespace only', async () => {
    const a = await makeNetns('sya');
    const b = await makeNetns('syb');
    assert.equal(await Netns.sysctl(a, 'net.ipv4.ip_forward'), '0');
    assert.equal(await Netns.sysctl(a, 'net.ipv4.ip_forward', '1'), '1');
    assert.equal(sh('cat', ['/proc/sys/net/ipv4/ip_forward'], a).trim(), '1');
    assert.equal(sh('cat', ['/proc/sys/net/ipv4/ip_forward'], b).trim(), '0');
    assert.equal(fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(), await Netns.sysctl(undefined, 'net.ipv4.ip_forward'));
    assert.equal(await Netns.sysctl(a, 'net/ipv4/conf/lo/forwarding'), '1');
    await rejects(Netns.sysctl(a, 'kernel.hostname', 'x'), 'ERR_INVALID_SYSCTL');
    await rejects(Netns.sysctl(a, 'net.ipv4.../../kernel/hostname'), 'ERR_INVALID_SYSCTL');
    await rejects(Netns.sysctl(a, 'vm.swappiness'), 'ERR_INVALID_SYSCTL');
    await rejects(Netns.sysctl(a, 'net.ipv4.no_such_key'), 'ERR_SYSCTL_NOT_FOUND');
    await rejects(Netns.sysctl('no-such-ns', 'net.ipv4.ip_forward'), 'ERR_NETNS_NOT_FOUND');
    await rejects(Netns.sysctl(a, 'net.ipv4.ip_forward', 'x'), 'EINVAL');
    assert.equal(sh('cat', ['/proc/sys/net/ipv4/ip_forward'], a).trim(), '1', 'a refused write changes nothing');
  });
});
