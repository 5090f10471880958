/**
 * Native resources come back: every handle kind (Netlink, NfTables, Conntrack) and link
 * watches, whether closed, dropped and garbage-collected, or left open in a worker thread that
 * exits or is terminated, leave the process with exactly the file descriptors
 * (/proc/self/fd) and threads (/proc/self/task) it had before.
 *
 * Each scenario runs in a child `node --expose-gc` so that the counts are those of a process
 * doing nothing else (the mocha process has other tests' timers and sockets), and so that
 * `gc()` exists. Under scripts/asan.js the children run the ASan/UBSan build of the addon too:
 * the settings that scripts/asan-child.js set aside are put back for them.
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { makeNetns, useSandbox } from '../helpers/sandbox';

const LIB = path.join(__dirname, '..', '..', 'lib', 'index.js');

/** What a child reports: counts before and after, and any detail it wants shown. */
interface Counts {
  fds: [number, number];
  threads: [number, number];
  note?: string;
  leftover?: string[];
  /** The ASan runtime was loaded in the child. */
  asan?: boolean;
}

/**
 * Runs `body` (an async function body, with `lib`, `ns`, `settle`, `count` and `sleep` in
 * scope) in a child node. `count()` snapshots fds and threads; `settle(base)` collects
 * garbage until both counts are back to `base` (or 5 s pass) and returns the last counts.
 */
function child(ns: string, body: string): Promise<Counts> {
  const script = `
    const fs = require('fs');
    const lib = require(${JSON.stringify(LIB)});
    const ns = ${JSON.stringify(ns)};
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const count = () => ({ fds: fs.readdirSync('/proc/self/fd').length, threads: fs.readdirSync('/proc/self/task').length });
    // What is open besides the baseline, for the failure message.
    const describe = () => fs.readdirSync('/proc/self/fd').map((f) => { try { return f + ' ' + fs.readlinkSync('/proc/self/fd/' + f); } catch { return f; } });
    async function settle(base) {
      let now = count();
      for (let i = 0; i < 50 && (now.fds !== base.fds || now.threads !== base.threads); i++) {
        global.gc();
        await sleep(100);
        now = count();
      }
      return now;
    }
    (async () => { ${body} })().then(
      (r) => { r.asan = fs.readFileSync('/proc/self/maps', 'utf8').includes('libasan'); process.stdout.write(JSON.stringify(r)); process.exit(0); },
      (e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); });`;
  const env = { ...process.env };
  if (env.NSNET_ASAN_ADDON) {
    env.NSNET_ADDON = env.NSNET_ASAN_ADDON;
    env.LD_PRELOAD = env.NSNET_ASAN_PRELOAD;
  }
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', '-e', script], { env, timeout: 90000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`child failed: ${err.message}\n${stderr}`));
      try {
        resolve(JSON.parse(stdout) as Counts);
      } catch {
        reject(new Error(`child printed no result: ${stdout}\n${stderr}`));
      }
    });
  });
}

function assertBack(r: Counts): void {
  assert.equal(r.asan, Boolean(process.env.NSNET_ASAN_ADDON), 'the child runs under ASan exactly when this process does');
  const detail = `${r.note ?? ''}\nstill open: ${(r.leftover ?? []).join(', ')}`;
  assert.equal(r.fds[1], r.fds[0], `file descriptors back to the baseline${detail}`);
  assert.equal(r.threads[1], r.threads[0], `threads back to the baseline${detail}`);
}

// Warm-up shared by every scenario: the first handle of each kind, a watch and a worker start
// the threads that live as long as the process (libuv's pool, V8's platform workers), so the
// baseline is taken after them.
const WARM = `
  for (let i = 0; i < 3; i++) {
    const h = await lib.Netlink.open({ netns: ns }); await h.links.list();
    const w = await h.links.watch(); w.close(); h.close();
    const t = await lib.NfTables.open({ netns: ns }); await t.generation(); t.close();
    const c = await lib.Conntrack.open({ netns: ns }); await c.stats(); c.close();
  }
  global.gc(); await sleep(200);
  const base = count();`;

const RESULT = `return { fds: [base.fds, after.fds], threads: [base.threads, after.threads], leftover: describe() };`;

describe('native resources are released', function () {
  useSandbox();
  this.timeout(180000);
  let ns: string;
  before(async () => {
    ns = await makeNetns('rel');
  });

  it('300 handles of each kind and 50 link watches, opened and closed; handles closed with 200 requests queued', async () => {
    const r = await child(
      ns,
      `${WARM}
      for (let i = 0; i < 300; i++) {
        const [h, t, c] = await Promise.all([lib.Netlink.open({ netns: ns }), lib.NfTables.open({ netns: ns }), lib.Conntrack.open({ netns: ns })]);
        if (i % 50 === 0) await Promise.all([h.links.list(), t.list(), c.list()]);
        h.close(); t.close(); c.close();
      }
      const h = await lib.Netlink.open({ netns: ns });
      for (let i = 0; i < 50; i++) {
        const w = await h.links.watch();
        if (i % 10 === 0) {
          // A watch that saw events.
          await h.links.add({ kind: 'bridge', name: 'wb' + i });
          await w.waitFor((e) => e.type === 'added' && e.link.name === 'wb' + i);
          await h.links.remove('wb' + i);
          w.close();
        } else {
          // A watch closed with an iteration waiting on it.
          const pending = w.next();
          w.close();
          await pending;
        }
      }
      h.close();
      // Closed with 200 requests queued: every promise settles, those not done with
      // ERR_HANDLE_CLOSED (how many finished first is up to the scheduler, so not asserted).
      for (let i = 0; i < 5; i++) {
        const q = await lib.Netlink.open({ netns: ns });
        const ops = Array.from({ length: 200 }, () => q.links.list());
        q.close();
        for (const s of await Promise.allSettled(ops))
          if (s.status === 'rejected' && s.reason.code !== 'ERR_HANDLE_CLOSED') throw s.reason;
      }
      const after = await settle(base);
      ${RESULT}`,
    );
    assertBack(r);
  });

  it('handles dropped without close() are released when collected, even with a request in flight', async () => {
    const r = await child(
      ns,
      `${WARM}
      // Opened in a function that returns nothing, so no frame keeps a handle reachable.
      const inflight = [];
      async function openAndDrop() {
        for (let i = 0; i < 30; i++) {
          const h = await lib.Netlink.open({ netns: ns });
          await h.links.list();
          const t = await lib.NfTables.open({ netns: ns });
          await t.list();
          const c = await lib.Conntrack.open({ netns: ns });
          await c.stats();
        }
        // Dropped while its request is still queued: the native object stays alive until the
        // request settles, then becomes collectable.
        const h = await lib.Netlink.open({ netns: ns });
        inflight.push(h.links.list().then((l) => l.length));
      }
      await openAndDrop();
      const during = count();
      await Promise.all(inflight.splice(0));
      const after = await settle(base);
      return { fds: [base.fds, after.fds], threads: [base.threads, after.threads], leftover: describe(),
               note: 'with 91 handles dropped: +' + (during.fds - base.fds) + ' fds, +' + (during.threads - base.threads) + ' threads' };`,
    );
    assert.match(r.note ?? '', /\+\d+ fds/);
    assertBack(r);
  });

  it('worker threads that exit, or are terminated, with open handles and watches leave nothing behind', async () => {
    const r = await child(
      ns,
      `${WARM}
      const { Worker } = require('worker_threads');
      // exit: process.exit() in the worker with everything open; end: the worker's event loop
      // ends (idle handles do not keep it alive); terminate: the parent stops it while
      // requests are in flight and a watch is open.
      const worker = (how) => new Worker(\`
        const lib = require(\${JSON.stringify(${JSON.stringify(LIB)})});
        const { parentPort } = require('worker_threads');
        (async () => {
          const ns = \${JSON.stringify(ns)};
          const keep = [];
          for (let i = 0; i < 5; i++) {
            const h = await lib.Netlink.open({ netns: ns }); await h.links.list(); keep.push(h);
            const t = await lib.NfTables.open({ netns: ns }); await t.generation(); keep.push(t);
            const c = await lib.Conntrack.open({ netns: ns }); await c.stats(); keep.push(c);
          }
          if ('\${how}' !== 'end') keep.push(await keep[0].links.watch());
          if ('\${how}' === 'terminate') for (let i = 0; i < 20; i++) keep[(i % 5) * 3].links.list().catch(() => {});
          globalThis.keep = keep;
          parentPort.postMessage('ready');
          if ('\${how}' === 'exit') process.exit(0);
        })();\`, { eval: true });
      const round = async () => {
        for (const how of ['exit', 'end', 'terminate']) {
          const w = worker(how);
          const exited = new Promise((res, rej) => { w.on('exit', res); w.on('error', rej); });
          await new Promise((res, rej) => { w.on('message', res); w.on('error', rej); });
          if (how === 'terminate') await w.terminate();
          await exited;
        }
      };
      await round(); // the first worker starts what lives as long as the process
      const first = await settle(base);
      for (let i = 0; i < 3; i++) await round();
      const after = await settle(first);
      return { fds: [first.fds, after.fds], threads: [first.threads, after.threads], leftover: describe() };`,
    );
    assertBack(r);
  });
});
