/**
 * nsnet-cni's published ports as runtimes use them, the plugin run as a process (the daemon and
 * the in-node fallback): the runtime holds its published host ports open itself (podman's conmon)
 * and the plugin does not count that as a conflict; one container (CNI_CONTAINERID) attached to
 * two networks with the same portMappings publishes each port once, through its first
 * attachment, and DEL of that one hands the port to the other; `hostIP` is passed through with
 * portmap's meaning (an IPv4 address, 0.0.0.0 included, is IPv4 only; an IPv6 one, :: included,
 * IPv6 only; '' every address). Real traffic from an external namespace is the oracle.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';
import { nftObjects, sh } from '../helpers/oracle';
import { ask, failed, tcp } from '../helpers/echo';
import { containerId, invoke, startTestDaemon, tempStateDir, type Invocation, type Mode, type Outcome } from '../helpers/cni';

const HOST = '10.99.0.1';
const HOST6 = '2001:db8:99::1';
const PEER6 = '2001:db8:99::2';

/** A TCP server on port 80 (both families) answering with the address it was reached at. */
async function whoami(ns: string): Promise<void> {
  const p = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      `
    require('net').createServer((c) => { c.on('error', () => {}); c.end(String(c.localAddress).replace(/^::ffff:/, '')); }).listen({ port: 80, host: '::' }, () => console.log('ready'));
    setTimeout(() => {}, 600000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  registerCleanup(() => {
    p.kill();
  }, `stop the server in ${ns}`);
  await new Promise((r) => p.stdout.once('data', r));
}

/** Published-port elements of nsnet's tables: `set key -> value owner`. */
function published(ns: string): string[] {
  const out: string[] = [];
  for (const m of nftObjects('map', ns)) {
    if (m.table !== 'nsnet' || !String(m.name).startsWith('published')) continue;
    for (const [k, val] of m.elem ?? []) out.push(`${m.name} ${JSON.stringify(k.elem.val.concat)} -> ${JSON.stringify(val.concat)} ${k.elem.comment}`);
  }
  return out.sort();
}

for (const mode of ['daemon', 'fallback'] as Mode[]) {
  describe(`nsnet-cni published ports as runtimes use them (${mode})`, function () {
    this.timeout(120000);
    useSandbox();

    let socket: string | undefined;
    let h: string;
    let ext: string;
    let stateDir: string;
    const call = (inv: Invocation): Promise<Outcome> => invoke(inv, socket);
    const conf = (name: string, subnet: string, extra: Record<string, unknown> = {}) => ({
      cniVersion: '1.1.0',
      name,
      type: 'nsnet-cni',
      subnet,
      stateDir,
      hostNetns: h,
      ...extra,
    });
    const mappings = (...m: Record<string, unknown>[]) => ({ capabilities: { portMappings: true }, runtimeConfig: { portMappings: m } });
    const ok = (r: Outcome): Outcome => {
      assert.equal(r.exitCode, 0, r.stdout + r.stderr);
      return r;
    };

    beforeEach(async () => {
      socket = mode === 'daemon' ? (await startTestDaemon()).socket : undefined;
      h = await makeNetns('ph');
      ext = await makeNetns('px');
      sh('ip', ['-n', h, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ext]);
      sh('ip', ['-n', h, 'addr', 'add', `${HOST}/24`, 'dev', 'up0']);
      sh('ip', ['-n', h, 'addr', 'add', `${HOST6}/64`, 'dev', 'up0', 'nodad']);
      sh('ip', ['-n', h, 'link', 'set', 'up0', 'up']);
      sh('ip', ['-n', ext, 'addr', 'add', '10.99.0.2/24', 'dev', 'eth0']);
      sh('ip', ['-n', ext, 'addr', 'add', `${PEER6}/64`, 'dev', 'eth0', 'nodad']);
      sh('ip', ['-n', ext, 'link', 'set', 'eth0', 'up']);
      stateDir = tempStateDir();
    });

    it('a host port the runtime holds open itself (as conmon does) is published; another container on it is still refused (101)', async () => {
      const holder = spawn(
        'ip',
        [
          'netns',
          'exec',
          h,
          process.execPath,
          '-e',
          `
        require('net').createServer().listen(8080, '0.0.0.0', () => console.log('ready')); setTimeout(() => {}, 600000);`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      registerCleanup(() => {
        holder.kill();
      }, 'stop the port holder');
      await new Promise((r) => holder.stdout.once('data', r));
      const [a, b] = [await makeNetns('pa'), await makeNetns('pb')];
      const config = conf('app', '10.55.0.0/16', mappings({ hostPort: 8080, containerPort: 80, protocol: 'tcp' }));
      ok(await call({ command: 'ADD', containerId: containerId('a'), netns: `/var/run/netns/${a}`, ifname: 'eth0', config }));
      await whoami(a);
      assert.equal(tcp(ext, HOST, 8080), '10.55.0.2', 'the container gets the traffic, not the holder');
      const other = await call({ command: 'ADD', containerId: containerId('b'), netns: `/var/run/netns/${b}`, ifname: 'eth0', config });
      assert.equal(other.exitCode, 1);
      assert.equal(other.json.code, 101, other.stdout);
      assert.match(other.json.msg, /tcp port 0\.0\.0\.0:8080 is held by endpoint [0-9a-f]+:eth0 \(network app\)/u);
    });

    it('one container on two networks with the same port mappings: both ADDs succeed, the first attachment receives, DEL of it hands the port to the second; another container gets 101', async () => {
      const c = await makeNetns('pc');
      const id = containerId('c');
      const pm = mappings({ hostPort: 8083, containerPort: 80, protocol: 'tcp' });
      const net1 = conf('net1', '10.61.0.0/24', pm);
      const net2 = conf('net2', '10.62.0.0/24', pm);
      const first = ok(await call({ command: 'ADD', containerId: id, netns: `/var/run/netns/${c}`, ifname: 'eth0', config: net1 }));
      const second = ok(await call({ command: 'ADD', containerId: id, netns: `/var/run/netns/${c}`, ifname: 'eth1', config: net2 }));
      assert.deepEqual(published(h), [`published_any ["tcp",8083] -> ["10.61.0.2",80] ep:${id}:eth0`]);
      await whoami(c);
      assert.equal(tcp(ext, HOST, 8083), '10.61.0.2');
      // CHECK of the waiting attachment: its port is published (by its container's first
      // attachment). (Its result lists a default route the container does not have — the first
      // network keeps it — so the prevResult given here lists none, as after a routing plugin.)
      ok(
        await call({
          command: 'CHECK',
          containerId: id,
          netns: `/var/run/netns/${c}`,
          ifname: 'eth1',
          config: { ...net2, prevResult: { ...second.json, routes: [] } },
        }),
      );
      const o = await makeNetns('po');
      const other = await call({ command: 'ADD', containerId: containerId('o'), netns: `/var/run/netns/${o}`, ifname: 'eth0', config: net2 });
      assert.equal(other.json?.code, 101, other.stdout);
      ok(await call({ command: 'DEL', containerId: id, netns: `/var/run/netns/${c}`, ifname: 'eth0', config: { ...net1, prevResult: first.json } }));
      assert.deepEqual(published(h), [`published_any ["tcp",8083] -> ["10.62.0.2",80] ep:${id}:eth1`]);
      assert.equal(tcp(ext, HOST, 8083), '10.62.0.2', 'the second attachment receives (and has the default route: replies get out)');
      ok(await call({ command: 'DEL', containerId: id, netns: `/var/run/netns/${c}`, ifname: 'eth1', config: net2 }));
      assert.deepEqual(published(h), []);
      ok(await call({ command: 'ADD', containerId: containerId('o'), netns: `/var/run/netns/${o}`, ifname: 'eth0', config: net2 }));
    });

    it('hostIP with portmap\'s meaning on a dual-stack network: "" both families, 0.0.0.0 IPv4 only, :: IPv6 only; ::1 and IPv6 on an IPv4-only network are refused (7)', async () => {
      const [a, b] = [await makeNetns('pd'), await makeNetns('pe')];
      const ds = (extra: Record<string, unknown>) => conf('ds', '10.63.0.0/24', { subnet6: 'fd00:63::/64', ...extra });
      ok(
        await call({
          command: 'ADD',
          containerId: containerId('d'),
          netns: `/var/run/netns/${a}`,
          ifname: 'eth0',
          config: ds(mappings({ hostPort: 8080, containerPort: 80, hostIP: '' })),
        }),
      );
      ok(
        await call({
          command: 'ADD',
          containerId: containerId('e'),
          netns: `/var/run/netns/${b}`,
          ifname: 'eth0',
          config: ds(mappings({ hostPort: 8081, containerPort: 80, hostIP: '0.0.0.0' }, { hostPort: 8082, containerPort: 80, hostIP: '::' })),
        }),
      );
      await whoami(a);
      await whoami(b);
      assert.deepEqual(
        ask(
          ext,
          [
            { proto: 'tcp', addr: HOST, port: 8080 },
            { proto: 'tcp', addr: HOST6, port: 8080 },
            { proto: 'tcp', addr: HOST, port: 8081 },
            { proto: 'tcp', addr: HOST6, port: 8081 },
            { proto: 'tcp', addr: HOST, port: 8082 },
            { proto: 'tcp', addr: HOST6, port: 8082 },
          ],
          4000,
        ),
        ['10.63.0.2', 'fd00:63::2', '10.63.0.3', 'error:ECONNREFUSED', 'error:ECONNREFUSED', 'fd00:63::3'],
      );
      const c = await makeNetns('pf');
      for (const [what, config] of [
        ['hostIP ::1', ds(mappings({ hostPort: 9000, containerPort: 80, hostIP: '::1' }))],
        ['hostIP :: on an IPv4-only network', conf('v4', '10.64.0.0/24', mappings({ hostPort: 9000, containerPort: 80, hostIP: '::' }))],
        ['a hostIP that is no address', ds(mappings({ hostPort: 9000, containerPort: 80, hostIP: '10.0.0.300' }))],
      ] as const) {
        const r = await call({ command: 'ADD', containerId: containerId('f'), netns: `/var/run/netns/${c}`, ifname: 'eth0', config });
        assert.equal(r.json?.code, 7, `${what}: ${r.stdout}`);
      }
      assert.ok(failed(tcp(ext, HOST6, 9000)));
    });
  });
}
