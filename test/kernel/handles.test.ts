/**
 * Handles: concurrency across namespaces, closing with requests in flight, and no fd or
 * thread leak over many open/close cycles.
 */
import * as assert from 'node:assert/strict';
import { Netlink, NsnetError, FileLock } from '../../lib/index';
import { makeNetns, useSandbox } from '../helpers/sandbox';
import { countFds, countThreads, ipJson } from '../helpers/oracle';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';

describe('handles', function () {
  useSandbox();
  this.timeout(120000);

  it('20 concurrent handles on 20 namespaces, 50 operations each, give exactly their own results', async () => {
    const names = await Promise.all(Array.from({ length: 20 }, () => makeNetns('cc')));
    const handles = await Promise.all(names.map((netns) => Netlink.open({ netns })));
    try {
      await Promise.all(
        handles.map(async (h, k) => {
          const ops: Promise<unknown>[] = [];
          for (let i = 0; i < 25; i++) ops.push(h.links.add({ kind: 'bridge', name: `b${k}-${i}` }));
          await Promise.all(ops);
          const sets: Promise<unknown>[] = [];
          for (let i = 0; i < 25; i++) sets.push(h.links.set(`b${k}-${i}`, { mtu: 1000 + k * 10 + (i % 10) }));
          await Promise.all(sets);
        }),
      );
      for (let k = 0; k < 20; k++) {
        const links = ipJson(['link', 'show'], names[k]).filter((l: any) => l.ifname !== 'lo');
        assert.equal(links.length, 25, `namespace ${k} has its 25 bridges`);
        for (const l of links) {
          assert.match(l.ifname, new RegExp(`^b${k}-\\d+$`));
          const i = Number(l.ifname.split('-')[1]);
          assert.equal(l.mtu, 1000 + k * 10 + (i % 10));
        }
      }
    } finally {
      for (const h of handles) h.close();
    }
  });

  it('closing with requests in flight settles every promise; ERR_HANDLE_CLOSED afterwards', async () => {
    const ns = await makeNetns('cl');
    const h = await Netlink.open({ netns: ns });
    const ops = Array.from({ length: 200 }, (_, i) => h.links.add({ kind: 'bridge', name: `f${i}` }));
    await new Promise((r) => setImmediate(r));
    h.close();
    const results = await Promise.allSettled(ops);
    let ok = 0;
    let closed = 0;
    for (const r of results) {
      if (r.status === 'fulfilled') ok++;
      else {
        assert.ok(r.reason instanceof NsnetError, String(r.reason));
        assert.equal(r.reason.code, 'ERR_HANDLE_CLOSED', r.reason.message);
        closed++;
      }
    }
    assert.equal(ok + closed, 200);
    assert.ok(closed > 0, 'some requests were still queued when the handle closed');
    assert.equal(h.pending, 0);
    // What was reported done is really there (in-flight ones may or may not be).
    const present = new Set(ipJson(['link', 'show'], ns).map((l: any) => l.ifname));
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') assert.ok(present.has(`f${i}`));
    });
    await assert.rejects(h.links.list(), (e: any) => e.code === 'ERR_HANDLE_CLOSED');
  });

  it('1,000 open/close cycles leak no file descriptor and no thread', async () => {
    const ns = await makeNetns('lk');
    // Warm up: libuv and the addon start their threads once.
    for (let i = 0; i < 5; i++) (await Netlink.open({ netns: ns })).close();
    await new Promise((r) => setTimeout(r, 100));
    const fds = countFds();
    const threads = countThreads();
    for (let i = 0; i < 1000; i++) {
      const h = await Netlink.open({ netns: ns });
      if (i % 100 === 0) await h.links.list();
      h.close();
    }
    // The addon's pool may have started a thread more during the cycles (a job queued while its
    // thread was finishing the last one): an idle one exits after 2 s. Waits for the counts.
    for (let i = 0; i < 50 && (countFds() !== fds || countThreads() !== threads); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(countFds(), fds, 'file descriptors');
    assert.equal(countThreads(), threads, 'threads');
  });

  it('an idle handle does not keep the process alive, a busy one does', async () => {
    // Checked in a child process: it must exit on its own with an open, idle handle.
    const { execFileSync } = await import('node:child_process');
    const script = `const { Netlink } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'lib', 'index.js'))});
      Netlink.open().then(async (h) => { await h.links.list(); console.log('listed'); });`;
    const out = execFileSync(process.execPath, ['-e', script], { timeout: 10000 }).toString();
    assert.equal(out.trim(), 'listed');
  });

  it('FileLock excludes a second holder until released, and waits off the event loop', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-lock-'));
    try {
      const file = path.join(dir, 'state.lock');
      const a = await FileLock.acquire(file);
      await assert.rejects(FileLock.acquire(file, { wait: false }), (e: any) => e.code === 'ERR_LOCKED');
      let got = false;
      const waiting = FileLock.acquire(file).then((l) => {
        got = true;
        return l;
      });
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(got, false, 'still waiting while held');
      assert.ok(ticks >= 5, 'the event loop kept running while the lock was awaited');
      a.release();
      const b = await waiting;
      clearInterval(timer);
      assert.ok(b.held);
      b.release();
      assert.equal(b.held, false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
