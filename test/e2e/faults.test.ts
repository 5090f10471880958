/**
 * kill -9 at every step of connect, disconnect, createNetwork and removeNetwork — and right
 * after the store's commit point — then gc(): the kernel (links, firewall elements) and the
 * store end exactly as before the operation or exactly as after it, never in between; and the
 * published port still answers (or no longer does) accordingly.
 *
 * Steps are injected with NSNET_FAULT=<operation>:<step> (lib/faults.ts) and
 * NSNET_STORE_CRASH_AFTER=journal (lib/store/filestore.ts): the process SIGKILLs itself there.
 */
import * as assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NetworkHost } from '../../lib/index';
import { ipJson, nftJson, sh } from '../helpers/oracle';
import { makeNetns, useSandbox } from '../helpers/sandbox';
import { makeWorld, type World } from '../helpers/world';
import { ask, server } from '../helpers/traffic';

const LIB = path.resolve(__dirname, '../../lib/index.js');

/** Runs `op` (JS using `nh`) in another process that kills itself at the fault point. */
function crashIn(stateDir: string, hostNs: string, op: string, env: Record<string, string>): Promise<{ signal: string | null; stderr: string }> {
  const code = `
    const { NetworkHost } = require(${JSON.stringify(LIB)});
    NetworkHost.open({ stateDir: ${JSON.stringify(stateDir)}, netns: ${JSON.stringify(hostNs)} })
      .then(async (nh) => { ${op}; })
      .then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });`;
  return new Promise((resolve) => {
    execFile(process.execPath, ['-e', code], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30000 }, (err, _out, stderr) => {
      resolve({ signal: (err as { signal?: string } | null)?.signal ?? null, stderr });
    });
  });
}

interface State {
  links: string[];
  elements: string[];
  networks: string[];
  endpoints: string[];
  container: string[];
}

describe('faults: kill -9 at every step, then gc() (before or after, never in between)', function () {
  this.timeout(180000);
  useSandbox();

  let h: string;
  let ext: string;
  let c: string;
  let stateDir: string;
  let host: NetworkHost;

  /** Everything that must be exactly before or exactly after. */
  async function state(): Promise<State> {
    const links = ipJson(['-d', 'link', 'show'], h)
      .map((l: any) => `${l.ifname} master=${l.master ?? '-'} ${l.flags.includes('UP') ? 'up' : 'down'} group=${l.group} alias=${l.ifalias ?? '-'}`)
      .sort();
    const elements: string[] = [];
    for (const o of nftJson(h).nftables) {
      const set = o.set ?? o.map;
      if (!set?.elem) continue;
      for (const e of set.elem) elements.push(`${set.family} ${set.table} ${set.name} ${JSON.stringify(e)}`);
    }
    return {
      links,
      elements: elements.sort(),
      networks: (await host.listNetworks()).map((n) => n.name).sort(),
      endpoints: (await host.listEndpoints()).map((e) => `${e.network}/${e.id} ${e.ipv4 ?? ''} ${JSON.stringify(e.ports)}`).sort(),
      container: ipJson(['addr', 'show'], c)
        .map((l: any) => `${l.ifname} ${l.flags.includes('UP') ? 'up' : 'down'} ${(l.addr_info ?? []).map((a: any) => a.local).join(',')}`)
        .sort(),
    };
  }

  let world: World;
  beforeEach(async () => {
    world = await makeWorld({ prefix: 'f', hostIp: '10.98.0.1', extIp: '10.98.0.2' });
    ({ h, ext, stateDir, host } = world);
    c = await makeNetns('fc');
  });

  const connectOp = (ns: string): string =>
    `await nh.connect('app', { id: 'c1', netns: ${JSON.stringify(ns)}, ipv4: '172.24.0.5', publish: [{ protocol: 'tcp', hostPort: 8090, containerPort: 80 }] })`;

  /** Whether the published port reaches the container's server from the external peer. */
  async function answers(): Promise<boolean> {
    const p = await server(c, 80, 'c1', 'tcp');
    try {
      return ask(ext, '10.98.0.1', 8090).startsWith('c1 ');
    } finally {
      p.kill();
    }
  }

  /**
   * One operation at every step: `setup` brings the world to "before", `op` is the JS the
   * crashing process runs, `run` does the same here; each fault must end in `expect`.
   */
  async function matrix(o: {
    setup: () => Promise<void>;
    op: string;
    run: () => Promise<void>;
    /** `either`: a step while the commit runs ahead (StoreTx.commitAhead): before or after, depending on whether the record was durable yet. */
    faults: { env: Record<string, string>; expect: 'before' | 'after' | 'either' }[];
    check?: (which: 'before' | 'after') => Promise<void>;
  }): Promise<number> {
    await o.setup();
    const before = await state();
    await o.run();
    await host.reap();
    const after = await state();
    assert.notDeepEqual(after, before, 'the operation changes something');
    let injected = 0;
    for (const f of o.faults) {
      await host.close();
      fs.rmSync(stateDir, { recursive: true, force: true });
      // Back to "before" from scratch: a fresh store and nothing of nsnet's in the host namespace.
      sh('nft', ['flush', 'ruleset'], h);
      for (const l of ipJson(['-d', 'link', 'show'], h)) if ((l.ifalias ?? '').startsWith('nsnet:')) sh('ip', ['-n', h, 'link', 'del', l.ifname]);
      for (const l of ipJson(['link', 'show'], c)) if (l.ifname !== 'lo') sh('ip', ['-n', c, 'link', 'del', l.ifname]);
      fs.mkdirSync(stateDir, { recursive: true });
      host = world.host = await NetworkHost.open({ stateDir, netns: h });
      await o.setup();
      assert.deepEqual(await state(), before, `${JSON.stringify(f.env)}: the world was rebuilt as before`);
      const r = await crashIn(stateDir, h, o.op, f.env);
      assert.equal(r.signal, 'SIGKILL', `${JSON.stringify(f.env)}: the process died there (${r.stderr})`);
      injected++;
      const report = await host.gc();
      await host.reap();
      const now = await state();
      const which = f.expect !== 'either' ? f.expect : isDeepStrictEqual(now, after) ? 'after' : 'before';
      assert.deepEqual(now, which === 'before' ? before : after, `${JSON.stringify(f.env)}: exactly ${f.expect} (gc: ${JSON.stringify(report)})`);
      await o.check?.(which);
    }
    return injected;
  }

  it('connect: each step, and after the commit point', async () => {
    const n = await matrix({
      setup: async () => {
        await host.createNetwork({ name: 'app', subnet: '172.24.0.0/24' });
      },
      op: connectOp(c),
      run: async () => {
        await host.connect('app', { id: 'c1', netns: c, ipv4: '172.24.0.5', publish: [{ protocol: 'tcp', hostPort: 8090, containerPort: 80 }] });
      },
      faults: [
        ...['connect:allocated', 'connect:network'].map((p) => ({ env: { NSNET_FAULT: p }, expect: 'before' as const })),
        // The record is committed ahead while the kernel work goes on (lib/attachments.ts).
        ...['connect:attached', 'connect:published'].map((p) => ({ env: { NSNET_FAULT: p }, expect: 'either' as const })),
        { env: { NSNET_STORE_CRASH_AFTER: 'journal' }, expect: 'after' },
      ],
      check: async (which) => assert.equal(await answers(), which === 'after', `the published port answers ${which === 'after' ? 'after' : 'not before'}`),
    });
    assert.equal(n, 5);
  });

  it('disconnect: each step, and after the commit point', async () => {
    const n = await matrix({
      setup: async () => {
        await host.createNetwork({ name: 'app', subnet: '172.24.0.0/24' });
        await host.connect('app', { id: 'c1', netns: c, ipv4: '172.24.0.5', publish: [{ protocol: 'tcp', hostPort: 8090, containerPort: 80 }] });
      },
      op: `await nh.disconnect('app', 'c1')`,
      run: async () => {
        await host.disconnect('app', 'c1');
      },
      faults: [
        { env: { NSNET_FAULT: 'disconnect:unpublished' }, expect: 'either' },
        { env: { NSNET_FAULT: 'disconnect:detached' }, expect: 'either' },
        { env: { NSNET_STORE_CRASH_AFTER: 'journal' }, expect: 'after' },
      ],
      check: async (which) => assert.equal(await answers(), which === 'before', `the published port answers ${which === 'before' ? 'before' : 'not after'}`),
    });
    assert.equal(n, 3);
  });

  it('createNetwork: each step, and after the commit point', async () => {
    const n = await matrix({
      setup: async () => undefined,
      op: `await nh.createNetwork({ name: 'app', subnet: '172.24.0.0/24' })`,
      run: async () => {
        await host.createNetwork({ name: 'app', subnet: '172.24.0.0/24' });
      },
      faults: [
        { env: { NSNET_FAULT: 'realize:bridge' }, expect: 'before' },
        { env: { NSNET_FAULT: 'createNetwork:realized' }, expect: 'before' },
        { env: { NSNET_STORE_CRASH_AFTER: 'journal' }, expect: 'after' },
      ],
      check: async (which) => {
        // The network works after, or the name is free before.
        if (which === 'after') assert.equal((await host.connect('app', { id: 'probe', netns: c })).ipv4, '172.24.0.2/24');
        else assert.equal(((await host.createNetwork({ name: 'app', subnet: '172.24.0.0/24' })) as { subnet?: string }).subnet, '172.24.0.0/24');
      },
    });
    assert.equal(n, 3);
  });

  it('removeNetwork: each step, and after the commit point', async () => {
    const n = await matrix({
      setup: async () => {
        await host.createNetwork({ name: 'app', subnet: '172.24.0.0/24', icc: false });
      },
      op: `await nh.removeNetwork('app')`,
      run: async () => {
        await host.removeNetwork('app');
      },
      faults: [
        { env: { NSNET_FAULT: 'removeNetwork:firewall' }, expect: 'before' },
        { env: { NSNET_FAULT: 'removeNetwork:bridge' }, expect: 'before' },
        { env: { NSNET_STORE_CRASH_AFTER: 'journal' }, expect: 'after' },
      ],
    });
    assert.equal(n, 3);
  });
});
