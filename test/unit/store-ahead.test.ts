/**
 * StoreTx.commitAhead(): a transaction's writes made durable while its callback goes on (a
 * connect's kernel work). Still one fdatasync when nothing follows; what is written after goes
 * in a second record; a callback that fails after it leaves the store exactly as before; readers
 * see nothing until the transaction ends.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileStore } from '../../lib/store/index';
import { setPhaseSink } from '../../lib/phases';

describe('store: commitAhead()', function () {
  this.timeout(20000);
  let dir: string;
  let store: FileStore;
  let syncs: number;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-store-ahead-'));
    store = await FileStore.open({ dir });
    await store.update((tx) => {
      tx.put('endpoints', 'old', { id: 'old' });
      tx.put('ipam', 'app', { leases: ['10.0.0.2'] });
    });
    syncs = 0;
    setPhaseSink({ mark: () => undefined, count: (what, n) => void (what === 'fdatasync' && (syncs += n)) });
  });

  afterEach(async () => {
    setPhaseSink(undefined);
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const everything = (s: FileStore = store): Promise<unknown> =>
    s.read((v) => ({ endpoints: v.list('endpoints').map((e) => e.key), ipam: v.get('ipam', 'app') ?? null }));
  /** The intact records of the log's current generation. */
  const records = (): number =>
    fs
      .readFileSync(path.join(dir, 'journal.log'), 'latin1')
      .split('\n')
      .filter((l) => l.startsWith('R ')).length;

  it('commits the writes so far while the callback goes on: durable before it returns, one fdatasync in all', async () => {
    const before = records();
    let durableWhileRunning = false;
    await store.update(async (tx) => {
      tx.put('endpoints', 'new', { id: 'new' });
      tx.put('ipam', 'app', { leases: ['10.0.0.2', '10.0.0.3'] });
      tx.delete('endpoints', 'old');
      tx.commitAhead!();
      // The "kernel work": the record reaches the log meanwhile.
      for (let i = 0; i < 200 && !durableWhileRunning; i++) {
        await new Promise((r) => setTimeout(r, 5));
        durableWhileRunning = records() === before + 1 && syncs === 1;
      }
    });
    assert.ok(durableWhileRunning, 'the record was written and synced before the callback returned');
    assert.equal(syncs, 1, 'one fdatasync in all');
    assert.equal(records(), before + 1);
    assert.deepEqual(await everything(), { endpoints: ['new'], ipam: { leases: ['10.0.0.2', '10.0.0.3'] } });
    // And it survives: another store object on the directory reads it.
    const other = await FileStore.open({ dir });
    assert.deepEqual(await everything(other), { endpoints: ['new'], ipam: { leases: ['10.0.0.2', '10.0.0.3'] } });
    await other.close();
  });

  it('writes made after it go in a second record; a second call and a call with nothing written do nothing', async () => {
    const before = records();
    await store.update(async (tx) => {
      tx.commitAhead!(); // nothing written yet: nothing committed
      tx.put('endpoints', 'a', { id: 'a', v: 1 });
      tx.commitAhead!();
      tx.commitAhead!();
      await new Promise((r) => setTimeout(r, 20));
      tx.put('endpoints', 'a', { id: 'a', v: 2 }); // changed after
      tx.put('endpoints', 'b', { id: 'b' });
    });
    assert.equal(records(), before + 2);
    assert.equal(syncs, 2);
    assert.deepEqual(await store.read((v) => v.get('endpoints', 'a')), { id: 'a', v: 2 });
    assert.deepEqual(await everything(), { endpoints: ['a', 'b', 'old'], ipam: { leases: ['10.0.0.2'] } });
    const before2 = records();
    await store.update(async (tx) => {
      tx.put('endpoints', 'c', { id: 'c' });
      tx.commitAhead!();
      await new Promise((r) => setTimeout(r, 5));
    });
    assert.equal(records(), before2 + 1, 'nothing written after it: no second record');
  });

  it('a callback that fails after it leaves the store exactly as before (its record is taken back), and the error comes out', async () => {
    const was = await everything();
    const before = records();
    await assert.rejects(
      store.update(async (tx) => {
        tx.put('endpoints', 'new', { id: 'new' });
        tx.put('ipam', 'app', { leases: ['10.0.0.2', '10.0.0.3'] });
        tx.delete('endpoints', 'old');
        tx.commitAhead!();
        await new Promise((r) => setTimeout(r, 10));
        throw new Error('the kernel said no');
      }),
      /the kernel said no/u,
    );
    assert.deepEqual(await everything(), was);
    assert.equal(records(), before + 2, 'the record, and the one that takes it back');
    const other = await FileStore.open({ dir });
    assert.deepEqual(await everything(other), was, 'as read anew from the directory');
    await other.close();
    // The store goes on as usual.
    await store.update((tx) => tx.put('endpoints', 'later', { id: 'later' }));
    assert.deepEqual(await everything(), { endpoints: ['later', 'old'], ipam: { leases: ['10.0.0.2'] } });
  });

  it('readers see nothing of it until the transaction ends', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const reader = await FileStore.open({ dir });
    let started!: () => void;
    const ahead = new Promise<void>((r) => (started = r));
    const update = store.update(async (tx) => {
      tx.put('endpoints', 'new', { id: 'new' });
      tx.commitAhead!();
      started();
      await gate;
    });
    await ahead;
    let seen: unknown;
    const read = everything(reader).then((v) => (seen = v));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(seen, undefined, 'the read waits for the transaction');
    open();
    await update;
    await read;
    assert.deepEqual(seen, { endpoints: ['new', 'old'], ipam: { leases: ['10.0.0.2'] } });
    await reader.close();
  });
});
