/**
 * Reliability: concurrent load from several processes, coexistence with other firewalls, a
 * state dir that fills up or turns read-only, and missing privileges.
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { NetworkHost, NsnetError } from '../../lib/index';
import { rejectsWith } from '../helpers/assert';
import { ipJson, nftJson, sh } from '../helpers/oracle';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';
import { makeWorld, type World } from '../helpers/world';
import { invoke, startTestDaemon } from '../helpers/cni';
import { ask, server } from '../helpers/traffic';

const LIB = path.resolve(__dirname, '../../lib/index.js');
const run = promisify(execFile);

/** The host namespace's links and nsnet-relevant nft elements, for before/after comparisons. */
function kernelState(h: string): { links: string[]; elements: string[] } {
  const links = ipJson(['-d', 'link', 'show'], h)
    .map((l: any) => `${l.ifname} ${l.ifalias ?? ''}`)
    .sort();
  const elements: string[] = [];
  for (const o of nftJson(h).nftables) {
    const set = o.set ?? o.map;
    for (const e of set?.elem ?? []) elements.push(`${set.table} ${set.name} ${JSON.stringify(e)}`);
  }
  return { links, elements: elements.sort() };
}

/** Files in a store collection (leases, owners, port claims). */
const docs = (stateDir: string, collection: string): number => {
  try {
    return fs.readdirSync(path.join(stateDir, collection)).length;
  } catch {
    return 0;
  }
};

describe('reliability', function () {
  this.timeout(300000);
  useSandbox();

  let h: string;
  let ext: string;
  let stateDir: string;
  let host: NetworkHost;

  let world: World;
  beforeEach(async () => {
    world = await makeWorld({ prefix: 'r', hostIp: '10.97.0.1', extIp: '10.97.0.2' });
    ({ h, ext, stateDir, host } = world);
  });

  it('load: 2 library processes and 2 CNI runtimes × 100 connect/disconnect cycles on one network at once; every call succeeds, nothing is held twice, nothing leaks', async () => {
    await host.createNetwork({ name: 'app', subnet: '172.23.0.0/26' }); // 61 addresses for 4 at a time: reuse is certain
    await host.reap();
    const before = kernelState(h);
    const leases = ['ipam-addr', 'ipam-owner', 'ports'].map((c) => docs(stateDir, c));
    const CYCLES = 100;
    type Cycle = { id: string; ip?: string; port?: number | null; held: number; released: number; error?: string; message?: string };
    // Two processes using the library...
    const libNs = await Promise.all([0, 1].map(() => makeNetns('rl')));
    const library = libNs.map((ns, i) =>
      run(
        process.execPath,
        [
          '-e',
          `
      const { NetworkHost } = require(${JSON.stringify(LIB)});
      (async () => {
        const nh = await NetworkHost.open({ stateDir: ${JSON.stringify(stateDir)}, netns: ${JSON.stringify(h)} });
        const out = [];
        for (let k = 0; k < ${CYCLES}; k++) {
          const id = 'p${i}-' + k;
          try {
            const ep = await nh.connect('app', { id, netns: ${JSON.stringify(ns)}, publish: k % 2 ? [{ protocol: 'tcp', hostPort: 0, containerPort: 80 }] : [] });
            const rec = { id, ip: ep.ipv4.split('/')[0], port: ep.ports[0] ? ep.ports[0].hostPort : null, held: Date.now() };
            await nh.disconnect('app', id);
            rec.released = Date.now();
            out.push(rec);
          } catch (e) { out.push({ id, error: e.code || String(e), message: e.message }); }
        }
        await nh.close();
        process.stdout.write(JSON.stringify(out));
      })().catch((e) => { console.error(e); process.exit(1); });`,
        ],
        { encoding: 'utf8', timeout: 280000, maxBuffer: 16 << 20 },
      ).then((r) => JSON.parse(r.stdout) as Cycle[]),
    );
    // ...and two container runtimes calling the CNI plugin (a process per call, through its daemon).
    const daemon = await startTestDaemon();
    const cniNs = await Promise.all([0, 1].map(() => makeNetns('rn')));
    const config = { cniVersion: '1.1.0', name: 'app', type: 'nsnet-cni', subnet: '172.23.0.0/26', stateDir, hostNetns: h };
    const runtimes = cniNs.map(async (ns, i) => {
      const out: Cycle[] = [];
      for (let k = 0; k < CYCLES; k++) {
        const containerId = `rt${i}-${k}`;
        const port = 20000 + i * 1000 + k;
        const base = { containerId, netns: `/run/netns/${ns}`, ifname: 'eth0' };
        const add = await invoke(
          { ...base, command: 'ADD', config: { ...config, runtimeConfig: { portMappings: [{ hostPort: port, containerPort: 80, protocol: 'tcp' }] } } },
          daemon.socket,
        );
        if (add.exitCode !== 0) {
          out.push({ id: containerId, held: 0, released: 0, error: String(add.json?.code ?? add.exitCode), message: add.json?.msg ?? add.stderr });
          continue;
        }
        const held = Date.now();
        const del = await invoke({ ...base, command: 'DEL', config }, daemon.socket);
        const rec: Cycle = { id: containerId, ip: String(add.json.ips[0].address).split('/')[0], port, held, released: Date.now() };
        if (del.exitCode !== 0) Object.assign(rec, { error: `DEL ${del.json?.code ?? del.exitCode}`, message: del.json?.msg ?? del.stderr });
        out.push(rec);
      }
      return out;
    });
    const results = (await Promise.all([...library, ...runtimes])).flat();
    assert.equal(results.length, 4 * CYCLES);
    assert.deepEqual(
      results.filter((r) => r.error),
      [],
      'every call succeeded',
    );
    // No two endpoints held one address (or one host port) at the same time.
    for (const key of ['ip', 'port'] as const) {
      const byValue = new Map<string, Cycle[]>();
      for (const r of results) {
        if (r[key] === null || r[key] === undefined) continue;
        const list = byValue.get(String(r[key])) ?? [];
        for (const other of list) assert.ok(r.released < other.held || other.released < r.held, `${key} ${r[key]} held twice at once`);
        list.push(r);
        byValue.set(String(r[key]), list);
      }
      if (key === 'ip') assert.ok(byValue.size < 4 * CYCLES, 'addresses were reused (the test exercised reuse)');
    }
    await daemon.stop();
    await host.reap();
    assert.deepEqual(await host.listEndpoints(), [], 'no endpoint left');
    assert.deepEqual(kernelState(h), before, 'no link and no firewall element left');
    assert.deepEqual(
      ['ipam-addr', 'ipam-owner', 'ports'].map((c) => docs(stateDir, c)),
      leases,
      'no lease or port claim left',
    );
    for (const ns of [...libNs, ...cniNs])
      assert.deepEqual(
        ipJson(['link', 'show'], ns).map((l: any) => l.ifname),
        ['lo'],
        `nothing left in ${ns}`,
      );
  });

  it('coexists with an iptables-nft ruleset and a foreign nftables table: they keep working and stay byte-for-byte the same', async () => {
    // Someone else's firewall: iptables (nft backend) filter + NAT rules, and an nft table.
    sh('iptables-nft', ['-A', 'INPUT', '-p', 'tcp', '--dport', '2222', '-j', 'DROP'], h);
    sh('iptables-nft', ['-t', 'nat', '-A', 'PREROUTING', '-p', 'tcp', '--dport', '2323', '-j', 'REDIRECT', '--to-ports', '2324'], h);
    sh('iptables-nft', ['-A', 'FORWARD', '-s', '10.77.0.0/24', '-j', 'ACCEPT'], h);
    sh('nft', ['-f', '-'], h, {
      input: [
        'table ip foreign {',
        '  counter seen {',
        '  }',
        '  chain in {',
        '    type filter hook input priority 10; policy accept;',
        '    tcp dport 2424 counter name "seen"',
        '  }',
        '  chain pre {',
        '    type nat hook prerouting priority -90; policy accept;',
        '    tcp dport 2525 redirect to :2526',
        '  }',
        '}',
        '',
      ].join('\n'),
    });
    const theirs = (): { iptables: string; foreign: string } => ({
      iptables: sh('iptables-nft-save', [], h)
        .split('\n')
        .filter((l) => !l.startsWith('#'))
        .map((l) => l.replace(/\[\d+:\d+\]/g, ''))
        .join('\n'),
      foreign: sh('nft', ['list', 'table', 'ip', 'foreign'], h).replace(/packets \d+ bytes \d+/g, ''),
    });
    const works = async (): Promise<void> => {
      const s1 = await server(h, 2222, 'blocked');
      const s2 = await server(h, 2324, 'redirected');
      const s3 = await server(h, 2526, 'foreign');
      const s4 = await server(h, 2424, 'counted');
      try {
        assert.equal(ask(ext, '10.97.0.1', 2222), '', 'their DROP still drops');
        assert.equal(ask(ext, '10.97.0.1', 2323), 'redirected 10.97.0.2', 'their iptables NAT still redirects');
        assert.equal(ask(ext, '10.97.0.1', 2525), 'foreign 10.97.0.2', 'their nft NAT still redirects');
        const before = Number(/packets (\d+)/.exec(sh('nft', ['list', 'counter', 'ip', 'foreign', 'seen'], h))![1]);
        assert.equal(ask(ext, '10.97.0.1', 2424), 'counted 10.97.0.2');
        assert.ok(Number(/packets (\d+)/.exec(sh('nft', ['list', 'counter', 'ip', 'foreign', 'seen'], h))![1]) > before, 'their counter still counts');
      } finally {
        for (const s of [s1, s2, s3, s4]) s.kill();
      }
    };
    const original = theirs();
    await works();

    await host.createNetwork({ name: 'app', subnet: '172.22.0.0/24' });
    const c = await makeNetns('rc');
    await host.connect('app', { id: 'c1', netns: c, publish: [{ protocol: 'tcp', hostPort: 8080, containerPort: 80 }] });
    const web = await server(c, 80, 'c1');
    assert.equal(ask(ext, '10.97.0.1', 8080), 'c1 10.97.0.2', 'nsnet publishes alongside them');
    web.kill();
    assert.deepEqual(theirs(), original, 'while nsnet runs, their rules are untouched');
    await works();
    await host.gc();
    await host.reconcile();
    await host.disconnect('app', 'c1');
    await host.removeNetwork('app');
    await host.gc();
    assert.deepEqual(theirs(), original, 'after nsnet is done, their rules are untouched');
    await works();
  });

  it('never deletes or edits what it did not create: foreign links named like its own, a foreign bridge in its place', async () => {
    sh('ip', ['-n', h, 'link', 'add', 've-000000000000', 'type', 'veth', 'peer', 'name', 've-000000000001'], undefined);
    sh('ip', ['-n', h, 'link', 'add', 'nsnet0', 'type', 'bridge']);
    sh('ip', ['-n', h, 'link', 'set', 'nsnet0', 'alias', 'someone else']);
    const c = await makeNetns('rc');
    await rejectsWith(() => host.connect('bridge', { id: 'c1', netns: c }), 'ERR_NAME_IN_USE', /nsnet0/);
    const gc = await host.gc();
    assert.deepEqual(gc.links, [], 'gc removed no link');
    const rec = await host.reconcile();
    assert.deepEqual(rec.problems, [], 'the default network has no endpoint: its name being taken is no problem yet');
    await host.createNetwork({ name: 'app', subnet: '172.19.0.0/24', bridge: 'br-taken' }).catch(() => undefined);
    sh('ip', ['-n', h, 'link', 'del', 'br-taken']);
    sh('ip', ['-n', h, 'link', 'add', 'br-taken', 'type', 'bridge']);
    const rec2 = await host.reconcile();
    assert.deepEqual(
      rec2.problems.map((p) => `${p.network}:${p.code}`),
      ['app:ERR_NAME_IN_USE'],
      'a taken bridge name is reported, not taken over',
    );
    const names = ipJson(['-d', 'link', 'show'], h).map((l: any) => `${l.ifname}:${l.ifalias ?? ''}`);
    for (const n of ['ve-000000000000:', 've-000000000001:', 'nsnet0:someone else', 'br-taken:']) assert.ok(names.includes(n), `${n} is still there`);
    assert.deepEqual(
      ipJson(['link', 'show'], c).map((l: any) => l.ifname),
      ['lo'],
    );
  });

  it('a full state dir: connect fails with ERR_STORE_IO and changes nothing in the kernel; the store is intact afterwards', async () => {
    // The state dir on a tiny tmpfs (this test runs in its own mount namespace).
    const small = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-full-'));
    sh('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', small]);
    registerCleanup(() => {
      sh('umount', ['-l', small]);
      fs.rmSync(small, { recursive: true, force: true });
    });
    const nh = await NetworkHost.open({ stateDir: small, netns: h });
    registerCleanup(() => nh.close());
    await nh.createNetwork({ name: 'app', subnet: '172.21.0.0/24' });
    const c = await makeNetns('rc');
    await nh.connect('app', { id: 'c0', netns: c, publish: [{ protocol: 'tcp', hostPort: 8081, containerPort: 80 }] });
    await nh.reap();
    const before = kernelState(h);
    const eps = await nh.listEndpoints();
    // Fill the disk.
    const filler = path.join(small, 'filler');
    const fd = fs.openSync(filler, 'w');
    try {
      for (;;) fs.writeSync(fd, Buffer.alloc(4096));
    } catch (e) {
      assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
    } finally {
      fs.closeSync(fd);
    }
    const c2 = await makeNetns('rc');
    await rejectsWith(
      () => nh.connect('app', { id: 'c1', netns: c2, publish: [{ protocol: 'tcp', hostPort: 8082, containerPort: 80 }] }),
      'ERR_STORE_IO',
      /ENOSPC|no space/i,
    );
    await nh.reap();
    assert.deepEqual(kernelState(h), before, 'the veth and the published port were undone');
    assert.deepEqual(
      ipJson(['link', 'show'], c2).map((l: any) => l.ifname),
      ['lo'],
    );
    const web = await server(c, 80, 'c0');
    assert.equal(ask(ext, '10.97.0.1', 8081), 'c0 10.97.0.2', 'the endpoint still works');
    web.kill();
    await rejectsWith(() => nh.createNetwork({ name: 'more', subnet: '172.21.1.0/24' }), 'ERR_STORE_IO');
    assert.deepEqual(kernelState(h), before, 'a failed createNetwork left no bridge');
    await rejectsWith(() => nh.removeNetwork('bridge'), 'ERR_INVALID_ARGUMENT');
    assert.deepEqual(await nh.listEndpoints(), eps, 'the store is as it was');
    // A disconnect only removes documents and overwrites others where they are: it needs room
    // only when its record does not fit in the log's last block. Either way, all or nothing.
    const outcome = await nh.disconnect('app', 'c0').then(
      () => undefined,
      (e: unknown) => e,
    );
    await nh.reap();
    if (outcome === undefined) {
      assert.deepEqual(await nh.listEndpoints(), [], 'disconnected on a full disk');
      assert.ok(!JSON.stringify(kernelState(h)).includes('8081'), 'its port is no longer published');
    } else {
      assert.equal((outcome as NsnetError).code, 'ERR_STORE_IO', String(outcome));
      assert.deepEqual(kernelState(h), before, 'a failed disconnect put everything back');
      fs.rmSync(filler);
      await nh.disconnect('app', 'c0');
    }
    fs.rmSync(filler, { force: true });
    assert.deepEqual(await nh.listEndpoints(), []);
  });

  it('a read-only state dir: operations fail with ERR_STORE_IO (EROFS), reads work, nothing changes', async () => {
    await host.createNetwork({ name: 'app', subnet: '172.20.9.0/24' });
    await host.close();
    sh('mount', ['--bind', stateDir, stateDir]);
    sh('mount', ['-o', 'remount,bind,ro', stateDir]);
    registerCleanup(() => {
      sh('umount', ['-l', stateDir]);
    });
    host = world.host = await NetworkHost.open({ stateDir, netns: h });
    const before = kernelState(h);
    assert.ok(
      (await host.listNetworks()).some((n) => n.name === 'app'),
      'reads work',
    );
    const c = await makeNetns('rc');
    await rejectsWith(() => host.connect('app', { id: 'c1', netns: c }), 'ERR_STORE_IO', /EROFS|read-only/i);
    await host.reap();
    assert.deepEqual(kernelState(h), before);
    assert.deepEqual(
      ipJson(['link', 'show'], c).map((l: any) => l.ifname),
      ['lo'],
    );
  });

  it('without CAP_NET_ADMIN (or CAP_SYS_ADMIN) calls fail fast with EPERM, clearly, instead of hanging', async () => {
    const code = `
      const { Netlink, NfTables, Netns, NetworkHost } = require(${JSON.stringify(LIB)});
      const out = {};
      const t = async (k, f) => { try { await f(); out[k] = 'ok'; } catch (e) { out[k] = { code: e.code, name: e.name, message: e.message }; } };
      (async () => {
        out.capEff = require('fs').readFileSync('/proc/self/status', 'utf8').match(/CapEff:\\s*(\\w+)/)[1];
        await t('link', async () => { const nl = await Netlink.open({ netns: ${JSON.stringify(h)} }); try { await nl.links.add({ kind: 'bridge', name: 'nope0' }); } finally { nl.close(); } });
        await t('nft', async () => { const n = await NfTables.open({ netns: ${JSON.stringify(h)} }); try { await n.transaction((tx) => tx.addTable({ family: 'inet', name: 'nope' })); } finally { n.close(); } });
        await t('netns', () => Netns.create('nsnet-eperm-probe'));
        await t('host', async () => { const nh = await NetworkHost.open({ stateDir: ${JSON.stringify(stateDir)}, netns: ${JSON.stringify(h)} }); await nh.close(); });
        process.stdout.write(JSON.stringify(out));
      })();`;
    const t0 = Date.now();
    const r = await run('capsh', ['--drop=cap_net_admin,cap_sys_admin', '--', '-c', `exec ${process.execPath} -e "$0"`, code], {
      encoding: 'utf8',
      timeout: 20000,
    });
    const out = JSON.parse(r.stdout);
    assert.ok(Date.now() - t0 < 15000, 'no hang');
    const caps = BigInt(`0x${out.capEff}`);
    assert.equal(caps & (1n << 12n), 0n, 'the child really lacks CAP_NET_ADMIN');
    for (const k of ['link', 'nft', 'netns', 'host']) {
      assert.equal(out[k]?.code, 'EPERM', `${k}: ${JSON.stringify(out[k])}`);
      assert.match(out[k].message, /permitted|permission|CAP_/i, `${k}: the message says why`);
    }
    assert.ok(!ipJson(['link', 'show'], h).some((l: any) => l.ifname === 'nope0'));
  });
});
