/**
 * The resolver follows the store: after any commit — by this process or another store object on
 * the same directory, however soon after the last one — fresh() makes the next answer wait for a
 * read that includes it; with nothing committed (and the stamp stable) it costs no read.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StoreSource, type StoreSnapshot } from '../../lib/dns/source';
import { FileStore } from '../../lib/store/index';
import { until } from '../helpers/dns';

for (const counter of [true, false])
  describe(`dns: following the store (${counter ? 'by its change counter' : 'by stamps: a store without a change counter'})`, function () {
    this.timeout(30000);
    let dir: string;
    let writer: FileStore;
    let reader: FileStore;
    let source: StoreSource;
    let snap: StoreSnapshot | undefined;

    beforeEach(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-dns-source-'));
      writer = await FileStore.open({ dir });
      reader = await FileStore.open({ dir });
      await writer.update((tx) => tx.put('networks', 'app', { name: 'app', driver: 'bridge' }));
      // Without the counter (a file system without inotify) the source compares stamps.
      const followed = counter ? reader : Object.assign(Object.create(reader) as FileStore, { generations: () => undefined });
      source = new StoreSource(
        followed,
        (s) => (snap = s),
        (e) => assert.fail(e),
      );
      await source.start();
      assert.equal(source.generations !== undefined, counter);
    });

    afterEach(async () => {
      source.close();
      await writer.close();
      await reader.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    const ids = (): string[] => (snap?.endpoints ?? []).map((e) => e.id).sort();

    it('sees every commit at the next fresh(), back to back', async () => {
      assert.deepEqual(
        snap?.networks.map((n) => n.name),
        ['app'],
      );
      for (let i = 0; i < 40; i++) {
        await writer.update((tx) => tx.put('endpoints', `app/e${i}`, { id: `e${i}`, network: 'app', ports: [], created: '' }));
        await source.fresh();
        assert.ok(ids().includes(`e${i}`), `e${i} right after its commit`);
        await writer.update((tx) => tx.delete('endpoints', `app/e${i}`));
        await source.fresh();
        assert.equal(ids().includes(`e${i}`), false, `e${i} gone right after its delete`);
      }
    });

    it('costs no read while nothing changes, and joins concurrent callers into one read', async () => {
      assert.ok(
        await until(async () => {
          const f = source.fresh();
          if (f) await f;
          return f === undefined;
        }),
        'the stamp becomes stable',
      );
      const reads = source.reads;
      for (let i = 0; i < 100; i++) assert.equal(source.fresh(), undefined);
      assert.equal(source.reads, reads);
      await writer.update((tx) => tx.put('endpoints', 'app/x', { id: 'x', network: 'app', ports: [], created: '' }));
      const waits = Array.from({ length: 50 }, () => source.fresh());
      assert.ok(waits.every((w) => w !== undefined));
      await Promise.all(waits);
      assert.ok(source.reads - reads <= 2, `${source.reads - reads} reads for 50 callers`);
      assert.deepEqual(ids(), ['x']);
    });

    it("sees a commit made right after a stable stamp was taken (the lock file's content is not re-read while its times stand)", async () => {
      for (let i = 0; i < 15; i++) {
        // Stable: the stamp then reuses the position it read (lib/store/changes.ts).
        await new Promise((r) => setTimeout(r, 30));
        const f = source.fresh();
        if (f) await f;
        assert.equal(source.fresh(), undefined, 'current and stable, no read');
        await writer.update((tx) => tx.put('endpoints', `app/s${i}`, { id: `s${i}`, network: 'app', ports: [], created: '' }));
        await source.fresh();
        assert.ok(ids().includes(`s${i}`), `s${i} right after its commit`);
      }
    });
  });
