/**
 * FileStore: round trips, all-or-nothing updates, two processes contending for one document,
 * crashes at every step of a commit (a child killed with SIGKILL at a hook point), corrupt files
 * reported and left alone, a full and a read-only file system (tmpfs mounts in the sandbox's
 * private mount namespace), and bad input.
 */
import * as assert from 'node:assert/strict';
import { fork, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileStore } from '../../lib/store/index';
import { encodeKey } from '../../lib/store/documents';
import { SPARE, SPARES_FILL, SPARES_MAX } from '../../lib/store/spares';
import { setPhaseSink } from '../../lib/phases';

const CHILD = process.env.NSNET_STORE_TEST_CHILD;

/** What a forked copy of this file does (see runChild). */
async function child(mode: string, dir: string): Promise<void> {
  const store = await FileStore.open({ dir });
  if (mode === 'count') {
    for (let i = 0; i < 200; i++) {
      await store.update((tx) => {
        const n = tx.get<number>('counters', 'n') ?? 0;
        tx.put('counters', 'n', n + 1);
      });
    }
  } else if (mode === 'commit') {
    // Killed by NSNET_STORE_CRASH_AFTER somewhere in here.
    await store.update((tx) => {
      tx.put('a', 'x', { v: 'after' });
      tx.put('b', 'y', { v: 'after' });
      tx.put('new', 'z', { v: 'after' });
      tx.delete('a', 'gone');
    });
  } else if (mode === 'aside') {
    // A repair: the damaged c/bad is rebuilt in place, c/drop is set aside (killed in here).
    await store.update((tx) => {
      for (const d of tx.scan('c').damaged) {
        tx.setAside(d);
        if (d.key === 'bad') tx.put('c', 'bad', 'rebuilt');
      }
    });
  }
  await store.close();
}

if (CHILD) {
  child(CHILD, process.env.NSNET_STORE_TEST_DIR!).then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`${e?.stack ?? e}\n`);
      process.exit(1);
    },
  );
} else {
  describe('FileStore', tests);
}

function runChild(mode: string, dir: string, env: Record<string, string> = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const p = fork(__filename, [], { env: { ...process.env, NSNET_STORE_TEST_CHILD: mode, NSNET_STORE_TEST_DIR: dir, ...env }, stdio: 'inherit' });
    p.on('error', reject);
    p.on('exit', (code, signal) => resolve({ code, signal }));
  });
}

const code = (c: string) => (e: any) => {
  assert.equal(e?.code, c, `expected ${c}, got ${e?.code}: ${e?.message}`);
  return true;
};

/**
 * The write-ahead log's state (lib/store/wal.ts), from its position in the lock file:
 * 'pending' (a record a replay must apply) or 'applied'; `end`: where the next record goes
 * (0 right after a checkpoint).
 */
function logState(dir: string): 'applied' | 'pending' {
  const text = fs.existsSync(path.join(dir, '.lock')) ? fs.readFileSync(path.join(dir, '.lock'), 'utf8') : '';
  return /^nsnet-wal \S+ \d+ \d+ applied/u.test(text) ? 'applied' : 'pending';
}
function logEnd(dir: string): number {
  return Number(/^nsnet-wal \S+ \d+ (\d+)/u.exec(fs.readFileSync(path.join(dir, '.lock'), 'utf8'))?.[1] ?? NaN);
}

/** Every file under dir (relative path → content), to prove a failure changed nothing. (Spare files are made in the background: not state.) */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (p !== path.join(dir, SPARE)) walk(p);
      } else if (e.name !== '.lock') out[path.relative(dir, p)] = fs.readFileSync(p, 'utf8');
    }
  };
  walk(dir);
  return out;
}

function tests(this: Mocha.Suite): void {
  this.timeout(60000);
  let tmp: string;
  let dir: string;
  let store: FileStore | undefined;
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-store-'));
    dir = path.join(tmp, 'state');
  });
  afterEach(async () => {
    await store?.close();
    store = undefined;
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('lib/store has no import cycle (the shared types live in a leaf module)', () => {
    // Sources, not the compiled output: `import type` leaves no trace in JavaScript.
    const src = path.join(__dirname, '..', '..', '..', 'lib', 'store');
    const edges = new Map<string, string[]>();
    for (const f of fs.readdirSync(src).filter((n) => n.endsWith('.ts'))) {
      const text = fs.readFileSync(path.join(src, f), 'utf8');
      edges.set(
        f,
        [...text.matchAll(/^(?:import|export)\b[^;]*?from '\.\/([^']+)'/gmsu)].map((m) => `${m[1]}.ts`),
      );
    }
    const cycles: string[] = [];
    const walk = (f: string, trail: string[]): void => {
      if (trail.includes(f)) {
        cycles.push([...trail.slice(trail.indexOf(f)), f].join(' → '));
        return;
      }
      for (const g of edges.get(f) ?? []) walk(g, [...trail, f]);
    };
    for (const f of edges.keys()) walk(f, []);
    assert.ok(edges.get('index.ts')?.includes('filestore.ts'), 'the scan sees imports');
    assert.deepEqual(cycles, []);
  });

  it('open creates the directory (0700) and meta.json {format:1}; reopening works', async () => {
    store = await FileStore.open({ dir });
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')), { format: 1 });
    await store.close();
    store = await FileStore.open({ dir });
    assert.deepEqual(await store.read((v) => v.keys('anything')), []);
  });

  it('a directory being removed while the store is open is not made again (ERR_STORE_IO naming it); a new one at the path is a new store', async () => {
    store = await FileStore.open({ dir });
    await store.update((tx) => tx.put('c', 'k', { v: 1 }));
    // As rm -rf does it: the documents, then the lock file, while the directory is still there.
    for (const e of fs.readdirSync(dir)) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
    const gone = (e: any): boolean =>
      e.code === 'ERR_STORE_IO' && e.details.errno === 'ENOENT' && e.details.removed === true && e.details.dir === dir && /removed/u.test(e.message);
    await assert.rejects(
      store.read((v) => v.get('c', 'k')),
      gone,
    );
    await assert.rejects(
      store.update((tx) => tx.put('c', 'k', { v: 2 })),
      gone,
    );
    assert.deepEqual(fs.readdirSync(dir), [], 'nothing made again');
    fs.rmdirSync(dir); // what rm -rf does last, and could not if the lock file were back
    await assert.rejects(
      store.read((v) => v.get('c', 'k')),
      gone,
    );
    assert.equal(fs.existsSync(dir), false);
    // A new directory at the path is a new store, for this store object as for a fresh open()
    // (made in a later tick of the file system's clock than the old one: see dirIdOf).
    await new Promise((r) => setTimeout(r, 30));
    fs.mkdirSync(dir);
    assert.equal(await store.read((v) => v.get('c', 'k')), undefined);
    await store.update((tx) => tx.put('c', 'k', { v: 3 }));
    assert.ok(fs.existsSync(path.join(dir, '.lock')));
    await store.close();
    store = await FileStore.open({ dir });
    assert.deepEqual(await store.read((v) => v.get('c', 'k')), { v: 3 });
  });

  it('round trip: get, list (sorted by key), keys, delete, across collections and a reopen', async () => {
    store = await FileStore.open({ dir });
    const out = await store.update((tx) => {
      tx.put('networks', 'b', { name: 'b', n: 2 });
      tx.put('networks', 'a', { name: 'a', nested: { list: [1, 'x', null, true] } });
      tx.put('endpoints', 'c1', 'a string');
      tx.put('endpoints', 'c2', 42);
      tx.put('endpoints', 'gone', null);
      return 'result';
    });
    assert.equal(out, 'result');
    await store.update((tx) => tx.delete('endpoints', 'gone'));
    await store.close();
    store = await FileStore.open({ dir });
    await store.read((v) => {
      assert.deepEqual(v.get('networks', 'a'), { name: 'a', nested: { list: [1, 'x', null, true] } });
      assert.equal(v.get('networks', 'missing'), undefined);
      assert.equal(v.get('nocollection', 'x'), undefined);
      assert.deepEqual(v.list('networks'), [
        { key: 'a', value: { name: 'a', nested: { list: [1, 'x', null, true] } } },
        { key: 'b', value: { name: 'b', n: 2 } },
      ]);
      assert.deepEqual(v.keys('endpoints'), ['c1', 'c2']);
      assert.equal(v.get('endpoints', 'c2'), 42);
      assert.deepEqual(v.list('nocollection'), []);
    });
    // (.spare: the deleted document's file, kept for the next new one: see the test below)
    assert.deepEqual(fs.readdirSync(dir).sort(), ['.lock', '.spare', 'endpoints', 'journal.log', 'meta.json', 'networks']);
  });

  it('any key round-trips and maps to a safe, bounded file name', async () => {
    store = await FileStore.open({ dir });
    const keys = [
      'a/b',
      '..',
      '.',
      '.hidden',
      '~tilde',
      '%41',
      'A',
      'a',
      'sp ace',
      'ünï©ødé',
      '😀',
      'x'.repeat(1000),
      'y'.repeat(4096),
      '\u0000nul',
      'a.json',
      'con',
    ];
    await store.update((tx) => keys.forEach((k, i) => tx.put('k', k, i)));
    await store.read((v) => {
      for (const [i, k] of keys.entries()) assert.equal(v.get('k', k), i, k.slice(0, 20));
      assert.deepEqual(v.keys('k'), [...keys].sort());
      assert.deepEqual(
        v.list('k').map((e) => e.key),
        [...keys].sort(),
      );
    });
    const names = fs.readdirSync(path.join(dir, 'k'));
    assert.equal(names.length, keys.length);
    for (const n of names) {
      assert.ok(Buffer.byteLength(n) <= 255 && !n.startsWith('.') && !n.includes('/'), n);
      assert.match(n, /^[A-Za-z0-9%~!*'()_.-]+\.json$/u);
    }
    assert.equal(encodeKey('..'), '%2E.');
    assert.notEqual(encodeKey('~x'), encodeKey('%7Ex'));
  });

  it('writes are visible to later reads of the same transaction, before commit', async () => {
    store = await FileStore.open({ dir });
    await store.update((tx) => {
      tx.put('c', 'old', 1);
      tx.put('c', 'keep', 2);
    });
    await store.update((tx) => {
      tx.put('c', 'new', 3);
      tx.delete('c', 'old');
      tx.put('c', 'keep', 20);
      assert.equal(tx.get('c', 'old'), undefined);
      assert.equal(tx.get('c', 'keep'), 20);
      assert.deepEqual(tx.keys('c'), ['keep', 'new']);
      assert.deepEqual(tx.list('c'), [
        { key: 'keep', value: 20 },
        { key: 'new', value: 3 },
      ]);
    });
    assert.deepEqual(await store.read((v) => v.list('c')), [
      { key: 'keep', value: 20 },
      { key: 'new', value: 3 },
    ]);
  });

  it('values are copies: changing one without put changes nothing', async () => {
    store = await FileStore.open({ dir });
    const value = { list: [1] };
    await store.update((tx) => {
      tx.put('c', 'k', value);
      value.list.push(2); // after put: not stored
      tx.get<{ list: number[] }>('c', 'k')!.list.push(3);
      assert.deepEqual(tx.get('c', 'k'), { list: [1] });
    });
    assert.deepEqual(await store.read((v) => v.get('c', 'k')), { list: [1] });
  });

  it('update is all or nothing: when fn throws (sync or async) nothing is written', async () => {
    store = await FileStore.open({ dir });
    await store.update((tx) => tx.put('c', 'k', 'before'));
    await store.settled();
    const before = snapshot(dir);
    const boom = new Error('boom');
    await assert.rejects(
      store.update((tx) => {
        tx.put('c', 'k', 'after');
        tx.put('c', 'other', 1);
        tx.put('newcoll', 'x', 1);
        tx.delete('c', 'k');
        throw boom;
      }),
      (e) => e === boom,
    );
    await assert.rejects(
      store.update(async (tx) => {
        tx.put('c', 'k', 'after');
        await new Promise((r) => setTimeout(r, 5));
        throw boom;
      }),
      (e) => e === boom,
    );
    assert.deepEqual(snapshot(dir), before);
    assert.equal(await store.read((v) => v.get('c', 'k')), 'before');
    await store.update((tx) => tx.put('c', 'k', 'later')); // still usable
    assert.equal(await store.read((v) => v.get('c', 'k')), 'later');
  });

  it('a put of an unchanged value and a delete of nothing write nothing', async () => {
    store = await FileStore.open({ dir });
    await store.update((tx) => tx.put('c', 'k', { a: 1 }));
    const ino = fs.statSync(path.join(dir, 'c', 'k.json')).ino;
    await store.update((tx) => {
      tx.put('c', 'k', tx.get('c', 'k'));
      tx.get('c', 'missing');
      tx.delete('c', 'missing');
    });
    assert.equal(fs.statSync(path.join(dir, 'c', 'k.json')).ino, ino);
  });

  it('two processes doing 200 increments each of one document end at exactly 400', async () => {
    store = await FileStore.open({ dir });
    const [a, b] = await Promise.all([runChild('count', dir), runChild('count', dir)]);
    assert.deepEqual([a.code, b.code], [0, 0]);
    assert.equal(await store.read((v) => v.get('counters', 'n')), 400);
  });

  it('concurrent updates in one process are serialized (100 increments → 100)', async () => {
    store = await FileStore.open({ dir });
    const s = store;
    await Promise.all(
      Array.from({ length: 100 }, () =>
        s.update(async (tx) => {
          const n = tx.get<number>('c', 'n') ?? 0;
          await new Promise((r) => setImmediate(r));
          tx.put('c', 'n', n + 1);
        }),
      ),
    );
    assert.equal(await s.read((v) => v.get('c', 'n')), 100);
  });

  describe('crash in the middle of a commit (child killed with SIGKILL)', () => {
    const seed = async (): Promise<void> => {
      const s = await FileStore.open({ dir });
      await s.update((tx) => {
        tx.put('a', 'x', { v: 'before' });
        tx.put('b', 'y', { v: 'before' });
        tx.put('a', 'gone', { v: 'before' });
      });
      await s.close();
    };
    const state = async (): Promise<unknown> => {
      store = await FileStore.open({ dir });
      return store.read((v) => ({ x: v.get('a', 'x'), y: v.get('b', 'y'), z: v.get('new', 'z'), gone: v.get('a', 'gone') }));
    };
    const after = { x: { v: 'after' }, y: { v: 'after' }, z: { v: 'after' }, gone: undefined };
    const before = { x: { v: 'before' }, y: { v: 'before' }, z: undefined, gone: { v: 'before' } };
    const leftovers = (): string[] => [
      ...Object.keys(snapshot(dir)).filter((f) => path.basename(f).startsWith('.tmp.')),
      ...(logState(dir) === 'pending' ? ['journal.log (pending)'] : []),
    ];

    it('killed before the journal lands: the store is as before, temp files swept', async () => {
      await seed();
      const r = await runChild('commit', dir, { NSNET_STORE_CRASH_AFTER: 'prepare' });
      assert.equal(r.signal, 'SIGKILL');
      assert.ok(leftovers().length > 0, 'the crash left temp files');
      assert.deepEqual(await state(), before);
      assert.deepEqual(leftovers(), []);
    });

    it('killed after the journal landed: the next open replays it', async () => {
      await seed();
      const r = await runChild('commit', dir, { NSNET_STORE_CRASH_AFTER: 'journal' });
      assert.equal(r.signal, 'SIGKILL');
      assert.equal(logState(dir), 'pending');
      assert.deepEqual(await state(), after);
      assert.deepEqual(leftovers(), []);
    });

    it('killed after the first document moved: the next open completes it', async () => {
      await seed();
      const r = await runChild('commit', dir, { NSNET_STORE_CRASH_AFTER: 'apply' });
      assert.equal(r.signal, 'SIGKILL');
      assert.deepEqual(await state(), after);
    });

    it('a leftover journal is replayed by a read of an already open store, and replaying twice is harmless', async () => {
      await seed();
      store = await FileStore.open({ dir });
      const r = await runChild('commit', dir, { NSNET_STORE_CRASH_AFTER: 'journal' });
      assert.equal(r.signal, 'SIGKILL');
      assert.deepEqual(await store.read((v) => ({ x: v.get('a', 'x'), y: v.get('b', 'y'), z: v.get('new', 'z'), gone: v.get('a', 'gone') })), after);
      assert.equal(logState(dir), 'applied', 'replayed');
      assert.equal(logEnd(dir), 0, 'and checkpointed');
      fs.writeFileSync(path.join(dir, '.lock'), ''); // as if the machine had restarted: the log is replayed again
      await store.close();
      assert.deepEqual(await state(), after);
    });
  });

  it('a journal written by hand is replayed on open', async () => {
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'meta.json'), '{"format":1}\n');
    fs.writeFileSync(
      path.join(dir, 'journal.json'),
      JSON.stringify({
        format: 1,
        ops: [
          { collection: 'net', key: 'n1', doc: { key: 'n1', value: { subnet: '10.0.0.0/24' } } },
          { collection: 'net', key: 'n2', doc: null },
        ],
      }),
    );
    store = await FileStore.open({ dir });
    assert.deepEqual(await store.read((v) => v.list('net')), [{ key: 'n1', value: { subnet: '10.0.0.0/24' } }]);
    assert.equal(fs.existsSync(path.join(dir, 'journal.json')), false);
  });

  it('a corrupt journal is ERR_STORE_CORRUPT and left in place', async () => {
    store = await FileStore.open({ dir });
    await store.close();
    store = undefined;
    for (const text of [
      '{"format":1,"ops":[{"collection":"a","key":"k","doc":{"key":"k","val',
      '{"format":1,"ops":[{"collection":"A/..","key":"k","doc":null}]}',
      '[]',
    ]) {
      fs.writeFileSync(path.join(dir, 'journal.json'), text);
      await assert.rejects(FileStore.open({ dir }), (e: any) => code('ERR_STORE_CORRUPT')(e) && e.details.file === path.join(dir, 'journal.json'));
      assert.equal(fs.readFileSync(path.join(dir, 'journal.json'), 'utf8'), text);
    }
  });

  describe('the write-ahead log (one fdatasync per commit)', () => {
    const LOG = (): string => path.join(dir, 'journal.log');
    const read = (s: FileStore): Promise<unknown> => s.read((v) => ({ x: v.get('a', 'x'), y: v.get('b', 'y') }));
    /** Two commits: x and y 'one', then x 'two'; the store closed. */
    const seed = async (): Promise<void> => {
      const s = await FileStore.open({ dir });
      await s.update((tx) => {
        tx.put('a', 'x', 'one');
        tx.put('b', 'y', 'one');
      });
      await s.update((tx) => tx.put('a', 'x', 'two'));
      await s.close();
    };

    it('a commit syncs once however many documents it writes: one fdatasync of the log, no fsync', async () => {
      store = await FileStore.open({ dir });
      await store.update((tx) => tx.put('a', 'first', 1)); // creates the log (and syncs its directory, once)
      const counts: Record<string, number> = {};
      setPhaseSink({ mark: () => undefined, count: (what, n) => void (counts[what] = (counts[what] ?? 0) + n) });
      try {
        await store.update((tx) => {
          for (let i = 0; i < 10; i++) tx.put(['a', 'b', 'c'][i % 3]!, `k${i}`, { i });
          tx.delete('a', 'first');
        });
        await store.settled();
      } finally {
        setPhaseSink(undefined);
      }
      assert.deepEqual(counts, { fdatasync: 1 });
      assert.equal(logState(dir), 'applied');
      assert.equal(await store.read((v) => v.keys('a').length + v.keys('b').length + v.keys('c').length), 10);
    });

    it('a torn record at the end (a commit that never returned) counts for nothing: the store is as before', async () => {
      for (const torn of ['R 1 0123456789abcdef {"ops":[{"collection":"a","key":"x","doc":{"key":"x","va', 'R 1 0123456789abcdef {"ops":[]}\n', '\0\0\0\0']) {
        fs.rmSync(dir, { recursive: true, force: true });
        await seed();
        // Written where the next record goes, and the position left "pending", as a writer
        // killed in the middle of its write leaves them.
        const fd = fs.openSync(LOG(), 'r+');
        fs.writeSync(fd, Buffer.from(torn), 0, Buffer.byteLength(torn), logEnd(dir));
        fs.closeSync(fd);
        fs.writeFileSync(path.join(dir, '.lock'), fs.readFileSync(path.join(dir, '.lock'), 'utf8').replace('applied', 'pending'));
        store = await FileStore.open({ dir });
        assert.deepEqual(await read(store), { x: 'two', y: 'one' }, JSON.stringify(torn));
        assert.equal(logState(dir), 'applied', 'replayed');
        assert.equal(logEnd(dir), 0, 'and checkpointed');
        await store.update((tx) => tx.put('b', 'y', 'three'));
        await store.close();
        store = await FileStore.open({ dir });
        assert.deepEqual(await read(store), { x: 'two', y: 'three' });
        await store.close();
        store = undefined;
      }
    });

    it('after a machine restart (another boot id) every record is applied again: documents that never reached the disk come back', async () => {
      await seed();
      // As if the page cache had been lost: x's last version and y are gone from the disk.
      fs.writeFileSync(path.join(dir, 'a', 'x.json'), '{"key":"x","value":"one"}\n');
      fs.rmSync(path.join(dir, 'b', 'y.json'));
      fs.writeFileSync(
        path.join(dir, '.lock'),
        fs.readFileSync(path.join(dir, '.lock'), 'utf8').replace(/^nsnet-wal \S+/u, 'nsnet-wal 00000000-0000-0000-0000-000000000000'),
      );
      store = await FileStore.open({ dir });
      assert.deepEqual(await read(store), { x: 'two', y: 'one' });
      assert.equal(logState(dir), 'applied');
      assert.equal(logEnd(dir), 0);
      // Replayed once: records of the old generation are not applied again.
      fs.writeFileSync(path.join(dir, 'a', 'x.json'), '{"key":"x","value":"by hand"}\n');
      assert.deepEqual(await read(store), { x: 'by hand', y: 'one' });
    });

    it('the log is a ring: written over from the start after a checkpoint (one syncfs), with its size kept; documents stay', async () => {
      store = await FileStore.open({ dir });
      await store.update((tx) => tx.put('big', 'first', 1));
      const size = fs.statSync(LOG()).size;
      const big = 'z'.repeat(300 * 1024);
      const counts: Record<string, number> = {};
      setPhaseSink({ mark: () => undefined, count: (what, n) => void (counts[what] = (counts[what] ?? 0) + n) });
      try {
        for (let i = 0; i < 4; i++) {
          await store.update((tx) => tx.put('big', `d${i}`, big));
          await store.settled();
        }
      } finally {
        setPhaseSink(undefined);
      }
      assert.equal(counts.syncfs, 1);
      assert.ok(logEnd(dir) < 400 * 1024, `written from the start again (position ${logEnd(dir)})`);
      assert.equal(fs.statSync(LOG()).size, size, 'the log kept its size');
      await store.close();
      fs.writeFileSync(path.join(dir, '.lock'), ''); // replayed from what the ring holds now
      store = await FileStore.open({ dir });
      assert.deepEqual(await store.read((v) => v.keys('big')), ['d0', 'd1', 'd2', 'd3', 'first']);
      assert.equal((await store.read((v) => v.get<string>('big', 'd3')))?.length, big.length);
    });

    it('documents are overwritten in place when they fit, renamed into place when new or larger', async () => {
      store = await FileStore.open({ dir });
      await store.update((tx) => tx.put('c', 'k', { v: 'a fairly long value to begin with' }));
      const file = path.join(dir, 'c', 'k.json');
      const ino = fs.statSync(file).ino;
      await store.update((tx) => tx.put('c', 'k', { v: 'short' }));
      assert.equal(fs.statSync(file).ino, ino, 'same file');
      assert.equal(fs.readFileSync(file, 'utf8'), '{"key":"k","value":{"v":"short"}}\n', 'cut to its new length');
      await store.update((tx) => tx.put('c', 'k', { v: 'x'.repeat(10000) }));
      assert.notEqual(fs.statSync(file).ino, ino, 'outgrew its file: written beside it and renamed');
      assert.equal((await store.read((v) => v.get<{ v: string }>('c', 'k')))?.v.length, 10000);
    });

    it('only regular files in .spare/ are taken: a directory put there by hand is left alone', async () => {
      store = await FileStore.open({ dir });
      await store.update((tx) => tx.put('c', 'first', 1)); // (makes .spare/)
      await store.close();
      fs.mkdirSync(path.join(dir, SPARE, 'by-hand'));
      fs.writeFileSync(path.join(dir, SPARE, '.hidden'), 'keep');
      store = await FileStore.open({ dir });
      await store.update((tx) => tx.put('c', 'second', 2));
      assert.deepEqual(await store.read((v) => [v.get('c', 'first'), v.get('c', 'second')]), [1, 2]);
      assert.ok(fs.statSync(path.join(dir, SPARE, 'by-hand')).isDirectory());
      assert.equal(fs.readFileSync(path.join(dir, SPARE, '.hidden'), 'utf8'), 'keep');
      assert.ok(fs.statSync(path.join(dir, 'c', 'second.json')).isFile());
    });

    it("new documents take spare files made in the background (no file created on the commit's path); a deleted document's file becomes a spare; at most SPARES_MAX", async () => {
      const spares = (): string[] => (fs.existsSync(path.join(dir, SPARE)) ? fs.readdirSync(path.join(dir, SPARE)) : []);
      const inodes = (): Set<number> => new Set(spares().map((n) => fs.statSync(path.join(dir, SPARE, n)).ino));
      /** Waits until at least n spares are there and none is being made (the count holds for 60 ms). */
      const filled = async (n: number): Promise<void> => {
        const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
        for (let i = 0; i < 200 && spares().length < n; i++) await sleep(10);
        for (let was = -1, i = 0; i < 100 && spares().length !== was; i++) {
          was = spares().length;
          await sleep(60);
        }
        assert.ok(spares().length >= n, `${spares().length} spares, waited for ${n}`);
      };
      store = await FileStore.open({ dir });
      await store.update((tx) => tx.put('c', 'old', { v: 'the deleted document, longer than the new one' }));
      await filled(SPARES_FILL); // made once the store is idle after the first commit
      const before = inodes();
      await store.update((tx) => tx.put('other', 'new', { v: 1 }));
      const file = path.join(dir, 'other', 'new.json');
      assert.ok(before.has(fs.statSync(file).ino), 'a spare became the new document');
      assert.equal(spares().length, SPARES_FILL - 1, 'no more made while enough are left');
      const ino = fs.statSync(path.join(dir, 'c', 'old.json')).ino;
      await store.update((tx) => tx.delete('c', 'old'));
      assert.deepEqual(fs.readdirSync(path.join(dir, 'c')), [], 'nothing left in the collection');
      assert.ok(inodes().has(ino), "the deleted document's file is a spare");
      await store.update((tx) => tx.put('other', 'new2', { v: 2 }));
      assert.equal(fs.statSync(path.join(dir, 'other', 'new2.json')).ino, ino, 'the last put back is the first taken');
      assert.equal(fs.readFileSync(path.join(dir, 'other', 'new2.json'), 'utf8'), '{"key":"new2","value":{"v":2}}\n', 'nothing of the old bytes');
      assert.deepEqual(await store.read((v) => [v.keys('c'), v.get('other', 'new'), v.get('other', 'new2')]), [[], { v: 1 }, { v: 2 }]);
      // Past SPARES_MAX a deleted document's file is unlinked.
      await store.update((tx) => {
        for (let i = 0; i < SPARES_MAX + 5; i++) tx.put('c', `k${i}`, i);
      });
      await filled(SPARES_FILL); // (made again once fewer than SPARES_LOW were left)
      await store.update((tx) => {
        for (let i = 0; i < SPARES_MAX + 5; i++) tx.delete('c', `k${i}`);
      });
      await store.close(); // (waits for spares being made)
      assert.equal(spares().length, SPARES_MAX);
      // Another process's spares are found and taken.
      store = await FileStore.open({ dir });
      await store.update((tx) => tx.put('c', 'again', 2));
      assert.equal(spares().length, SPARES_MAX - 1, 'a spare of the earlier process was taken');
      assert.equal(await store.read((v) => v.get('c', 'again')), 2);
    });
  });

  it('a corrupt or truncated document is ERR_STORE_CORRUPT naming the file, which stays untouched', async () => {
    store = await FileStore.open({ dir });
    await store.update((tx) => {
      tx.put('c', 'good', 1);
      tx.put('c', 'bad', { a: 1 });
    });
    const file = path.join(dir, 'c', 'bad.json');
    for (const text of ['{"key":"bad","value":{"a":1', '', '{"key":"other","value":1}', '{"value":1}', 'null']) {
      fs.writeFileSync(file, text);
      const s = store;
      for (const op of [() => s.read((v) => v.get('c', 'bad')), () => s.read((v) => v.list('c')), () => s.update((tx) => tx.get('c', 'bad'))]) {
        await assert.rejects(op(), (e: any) => code('ERR_STORE_CORRUPT')(e) && e.details.file === file && e.message.includes(file));
      }
      assert.equal(fs.readFileSync(file, 'utf8'), text);
    }
    assert.equal(await store.read((v) => v.get('c', 'good')), 1);
  });

  describe('damaged documents', () => {
    const TRUNCATED = '{"trunc';
    /** c/good, c/bad and c/drop, then bad and drop damaged by hand (as a disk or a person would). */
    const damage = async (): Promise<{ bad: string; drop: string }> => {
      store = await FileStore.open({ dir });
      await store.update((tx) => {
        tx.put('c', 'good', 1);
        tx.put('c', 'bad', { was: 'bad' });
        tx.put('c', 'drop', { was: 'drop' });
        tx.put('other', 'x', 'fine');
      });
      await store.settled();
      const bad = path.join(dir, 'c', 'bad.json');
      const drop = path.join(dir, 'c', 'drop.json');
      fs.writeFileSync(bad, TRUNCATED);
      fs.writeFileSync(drop, '');
      return { bad, drop };
    };

    it('scan lists the readable documents and reports the damaged ones (file, key, why); damaged() covers every collection', async () => {
      const { bad, drop } = await damage();
      const damaged = [
        { collection: 'c', key: 'bad', file: bad, reason: 'not valid JSON (truncated?)' },
        { collection: 'c', key: 'drop', file: drop, reason: 'empty file' },
      ];
      await store!.read((v) => {
        assert.deepEqual(v.scan('c'), { entries: [{ key: 'good', value: 1 }], damaged });
        assert.deepEqual(v.scan('other'), { entries: [{ key: 'x', value: 'fine' }], damaged: [] });
        assert.deepEqual(v.scan('none'), { entries: [], damaged: [] });
        assert.deepEqual(v.damaged(), damaged);
        assert.deepEqual(v.damaged({}, ['other']), []);
        assert.deepEqual(v.keys('c'), ['bad', 'drop', 'good'], 'keys come from file names: still known');
        assert.equal(v.get('c', 'good'), 1);
        // What needs the document fails, naming the file; a whole-collection list is all or nothing.
        assert.throws(
          () => v.get('c', 'bad'),
          (e: any) =>
            code('ERR_STORE_CORRUPT')(e) && e.details.file === bad && e.details.key === 'bad' && e.details.collection === 'c' && e.message.includes(bad),
        );
        assert.throws(
          () => v.list('c'),
          (e: any) => code('ERR_STORE_CORRUPT')(e) && e.details.file === bad && e.details.damaged.length === 2,
        );
      });
      // A check refuses readable values: they count as damaged, with its reason.
      const check = (value: unknown) => (value === 'fine' ? undefined : 'not fine');
      await store!.update((tx) => {
        tx.put('other', 'y', 2);
        assert.deepEqual(tx.scan('other', check), {
          entries: [
            { key: 'x', value: 'fine' },
            { key: 'y', value: 2 },
          ], // (this transaction's own writes are not checked)
          damaged: [],
        });
      });
      await store!.read((v) => {
        assert.deepEqual(v.scan('other', check).damaged, [{ collection: 'other', key: 'y', file: path.join(dir, 'other', 'y.json'), reason: 'not fine' }]);
        assert.equal(v.damaged({ other: check }).length, 3);
      });
      assert.equal(fs.readFileSync(bad, 'utf8'), TRUNCATED, 'reading changes nothing');
    });

    it('a document whose file name is no key (a digest name, or foreign) is reported without a key', async () => {
      store = await FileStore.open({ dir });
      const long = 'k'.repeat(300);
      await store.update((tx) => tx.put('c', long, 1));
      const [digest] = fs.readdirSync(path.join(dir, 'c'));
      fs.writeFileSync(path.join(dir, 'c', digest!), '{"key":');
      fs.writeFileSync(path.join(dir, 'c', 'Not%zz.json'), '{"key":"x","value":1}');
      await store.read((v) =>
        assert.deepEqual(
          v
            .scan('c')
            .damaged.map((d) => [path.basename(d.file), d.key])
            .sort(),
          [
            ['Not%zz.json', undefined],
            [digest!, undefined],
          ].sort(),
        ),
      );
    });

    it('setAside keeps the bytes under <name>.damaged: a document rebuilt in place, one dropped, one without a key', async () => {
      const { bad, drop } = await damage();
      const foreign = path.join(dir, 'c', 'Not%zz.json');
      fs.writeFileSync(foreign, 'junk');
      const kept = await store!.update((tx) => {
        const out = tx.scan('c').damaged.map((d) => tx.setAside(d));
        tx.put('c', 'bad', 'rebuilt');
        // Later reads of the transaction: the damage is gone.
        assert.deepEqual(tx.scan('c'), {
          entries: [
            { key: 'bad', value: 'rebuilt' },
            { key: 'good', value: 1 },
          ],
          damaged: [],
        });
        assert.deepEqual(
          tx.list('c').map((e) => e.key),
          ['bad', 'good'],
        );
        assert.equal(tx.get('c', 'drop'), undefined);
        assert.deepEqual(tx.keys('c'), ['bad', 'good']);
        return out;
      });
      assert.deepEqual(kept, [`${foreign}.damaged`, `${bad}.damaged`, `${drop}.damaged`]);
      await store!.settled();
      assert.equal(fs.readFileSync(`${bad}.damaged`, 'utf8'), TRUNCATED);
      assert.equal(fs.readFileSync(`${drop}.damaged`, 'utf8'), '');
      assert.equal(fs.readFileSync(`${foreign}.damaged`, 'utf8'), 'junk');
      assert.equal(fs.existsSync(drop), false);
      assert.equal(fs.existsSync(foreign), false);
      await store!.read((v) => {
        assert.deepEqual(v.scan('c'), {
          entries: [
            { key: 'bad', value: 'rebuilt' },
            { key: 'good', value: 1 },
          ],
          damaged: [],
        });
        assert.deepEqual(v.damaged(), []);
      });
      // Damaged again: the first kept copy is not overwritten.
      fs.writeFileSync(bad, 'again');
      await store!.update((tx) => tx.scan('c').damaged.forEach((d) => assert.equal(tx.setAside(d), path.join(dir, 'c', 'bad.json.2.damaged'))));
      await store!.settled();
      assert.equal(fs.readFileSync(`${bad}.damaged`, 'utf8'), TRUNCATED);
      assert.equal(fs.readFileSync(path.join(dir, 'c', 'bad.json.2.damaged'), 'utf8'), 'again');
      assert.equal(await store!.read((v) => v.get('c', 'bad')), undefined);
    });

    it('setAside in a transaction that fails changes nothing; a read view cannot set aside', async () => {
      const { bad } = await damage();
      const before = snapshot(dir);
      await assert.rejects(
        store!.update((tx) => {
          for (const d of tx.scan('c').damaged) tx.setAside(d);
          throw new Error('boom');
        }),
        /boom/u,
      );
      assert.deepEqual(snapshot(dir), before);
      await assert.rejects(
        store!.read((v) => (v as any).setAside({ collection: 'c', key: 'bad', file: bad, reason: '' })),
        code('ERR_INVALID_ARGUMENT'),
      );
      await assert.rejects(
        store!.update((tx) => tx.setAside({ collection: 'c', file: path.join(dir, 'meta.json'), reason: '' })),
        code('ERR_INVALID_ARGUMENT'),
      );
      await assert.rejects(
        store!.update((tx) => tx.setAside({ collection: 'c', file: path.join(dir, 'c', '..', 'other', 'x.json'), reason: '' })),
        code('ERR_INVALID_ARGUMENT'),
      );
      assert.deepEqual(snapshot(dir), before);
    });

    it('crash recovery still works: killed before the journal, the damage is still there (and set aside again to the same name); after it, the repair stands', async () => {
      const { bad, drop } = await damage();
      await store!.close();
      store = undefined;
      let r = await runChild('aside', dir, { NSNET_STORE_CRASH_AFTER: 'prepare' });
      assert.equal(r.signal, 'SIGKILL');
      store = await FileStore.open({ dir });
      assert.deepEqual(
        (await store.read((v) => v.damaged())).map((d) => d.key),
        ['bad', 'drop'],
      );
      assert.equal(fs.readFileSync(`${bad}.damaged`, 'utf8'), TRUNCATED, 'the second name was made before the crash');
      await store.close();
      store = undefined;
      r = await runChild('aside', dir, { NSNET_STORE_CRASH_AFTER: 'journal' });
      assert.equal(r.signal, 'SIGKILL');
      assert.equal(logState(dir), 'pending');
      store = await FileStore.open({ dir });
      assert.deepEqual(await store.read((v) => v.scan('c')), {
        entries: [
          { key: 'bad', value: 'rebuilt' },
          { key: 'good', value: 1 },
        ],
        damaged: [],
      });
      assert.deepEqual(fs.readdirSync(path.join(dir, 'c')).sort(), ['bad.json', 'bad.json.damaged', 'drop.json.damaged', 'good.json']);
      assert.equal(fs.readFileSync(`${drop}.damaged`, 'utf8'), '');
    });

    it("a reader going through a crashed writer's journal sees the journal's document, not the damage it replaces", async () => {
      const { bad } = await damage();
      fs.writeFileSync(
        path.join(dir, 'journal.json'),
        JSON.stringify({ format: 1, ops: [{ collection: 'c', key: 'bad', doc: { key: 'bad', value: 'from the journal' } }] }),
      );
      // (A journal is replayed on the next read; the damaged file is replaced by it.)
      assert.deepEqual(await store!.read((v) => v.scan('c').entries.map((e) => e.value)), ['from the journal', 1]);
      assert.equal(fs.readFileSync(bad, 'utf8'), '{"key":"bad","value":"from the journal"}\n');
    });
  });

  it('an unknown format is ERR_STORE_FORMAT; a corrupt meta.json is ERR_STORE_CORRUPT', async () => {
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'meta.json'), '{"format":2}');
    await assert.rejects(FileStore.open({ dir }), (e: any) => code('ERR_STORE_FORMAT')(e) && e.details.format === 2);
    fs.writeFileSync(path.join(dir, 'meta.json'), '{"form');
    await assert.rejects(FileStore.open({ dir }), code('ERR_STORE_CORRUPT'));
    assert.equal(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'), '{"form');
  });

  it('bad collection names, keys and values are ERR_INVALID_ARGUMENT', async () => {
    store = await FileStore.open({ dir });
    await assert.rejects(FileStore.open({ dir: '' }), code('ERR_INVALID_ARGUMENT'));
    await assert.rejects(FileStore.open({} as any), code('ERR_INVALID_ARGUMENT'));
    await store.update((tx) => {
      for (const c of ['', 'A', '1a', 'a/b', '..', 'a.b', 'x'.repeat(65), 'meta.json', 5 as any]) {
        assert.throws(() => tx.get(c, 'k'), code('ERR_INVALID_ARGUMENT'), String(c));
        assert.throws(() => tx.put(c, 'k', 1), code('ERR_INVALID_ARGUMENT'), String(c));
        assert.throws(() => tx.list(c), code('ERR_INVALID_ARGUMENT'), String(c));
      }
      for (const k of ['', '\ud800', 'x'.repeat(4097), undefined as any, 7 as any]) {
        assert.throws(() => tx.get('c', k), code('ERR_INVALID_ARGUMENT'));
        assert.throws(() => tx.delete('c', k), code('ERR_INVALID_ARGUMENT'));
      }
      const circular: any = {};
      circular.self = circular;
      for (const v of [undefined, () => 1, circular, 10n]) assert.throws(() => tx.put('c', 'k', v), code('ERR_INVALID_ARGUMENT'));
    });
    assert.deepEqual(fs.readdirSync(dir).sort(), ['.lock', 'meta.json']);
  });

  it('misuse: writing through a read view, using a finished transaction, nesting, after close', async () => {
    store = await FileStore.open({ dir });
    const s = store;
    await assert.rejects(
      s.read((v) => (v as any).put('c', 'k', 1)),
      code('ERR_INVALID_ARGUMENT'),
    );
    let kept: any;
    await s.update((tx) => {
      kept = tx;
    });
    assert.throws(() => kept.put('c', 'k', 1), code('ERR_STORE_TX_CLOSED'));
    assert.throws(() => kept.get('c', 'k'), code('ERR_STORE_TX_CLOSED'));
    await assert.rejects(
      s.update(() => s.update(() => 1)),
      code('ERR_STORE_NESTED'),
    );
    await assert.rejects(
      s.update(async () => {
        await null;
        return s.read(() => 1);
      }),
      code('ERR_STORE_NESTED'),
    );
    await assert.rejects(
      s.read(() => s.read(() => 1)),
      code('ERR_STORE_NESTED'),
    );
    const slow = s.update(async (tx) => {
      await new Promise((r) => setTimeout(r, 20));
      tx.put('c', 'k', 'done');
    });
    await s.close();
    assert.equal(await slow, undefined);
    await assert.rejects(
      s.read(() => 1),
      code('ERR_STORE_CLOSED'),
    );
    await assert.rejects(
      s.update(() => 1),
      code('ERR_STORE_CLOSED'),
    );
    const again = await FileStore.open({ dir });
    assert.equal(await again.read((v) => v.get('c', 'k')), 'done');
    await again.close();
  });

  describe('file system failures (tmpfs in the sandbox mount namespace)', () => {
    let mnt: string;
    const mount = (...args: string[]): void => {
      const r = spawnSync('mount', args, { encoding: 'utf8' });
      assert.equal(r.status, 0, `mount ${args.join(' ')}: ${r.stderr}`);
    };
    beforeEach(() => {
      mnt = path.join(tmp, 'mnt');
      fs.mkdirSync(mnt);
      mount('-t', 'tmpfs', '-o', 'size=32k,mode=0700', 'nsnet-test', mnt);
      dir = path.join(mnt, 'state');
    });
    afterEach(async () => {
      await store?.close();
      store = undefined;
      spawnSync('umount', [mnt]);
    });

    it('a full disk is ERR_STORE_IO (ENOSPC) and the store is unchanged, without stray temp files', async () => {
      store = await FileStore.open({ dir });
      await store.update((tx) => {
        tx.put('c', 'small', 1);
        tx.put('c', 'other', 2);
      });
      await store.settled();
      const before = snapshot(dir);
      const big = 'x'.repeat(24 * 1024);
      await assert.rejects(
        store.update((tx) => {
          tx.put('c', 'small', 100);
          tx.put('c', 'big', big);
          tx.delete('c', 'other');
          tx.put('fresh', 'k', 1);
        }),
        (e: any) => code('ERR_STORE_IO')(e) && e.details.errno === 'ENOSPC',
      );
      assert.deepEqual(snapshot(dir), before);
      assert.deepEqual(await store.read((v) => v.list('c')), [
        { key: 'other', value: 2 },
        { key: 'small', value: 1 },
      ]);
      // A document that fits, with a journal (which holds it again) that does not.
      await assert.rejects(
        store.update((tx) => tx.put('c', 'mid', 'y'.repeat(12 * 1024))),
        (e: any) => code('ERR_STORE_IO')(e) && e.details.errno === 'ENOSPC',
      );
      assert.deepEqual(snapshot(dir), before);
      await store.update((tx) => tx.put('c', 'small', 3)); // space is still there for small things
      assert.equal(await store.read((v) => v.get('c', 'small')), 3);
    });

    it('a read-only file system: updates are ERR_STORE_IO (EROFS), reads still work, nothing changes', async () => {
      store = await FileStore.open({ dir });
      await store.update((tx) => tx.put('c', 'k', 'before'));
      await store.close();
      const before = snapshot(dir);
      mount('-o', 'remount,ro', mnt);
      store = await FileStore.open({ dir }); // reading needs no lock where no one can write
      await assert.rejects(
        store.update((tx) => tx.put('c', 'k', 'after')),
        (e: any) => code('ERR_STORE_IO')(e) && e.details.errno === 'EROFS',
      );
      assert.equal(await store.read((v) => v.get('c', 'k')), 'before');
      mount('-o', 'remount,rw', mnt);
      assert.deepEqual(snapshot(dir), before);
    });

    it('a read-only file system and a store without its lock file (copied without it): reads still work', async () => {
      store = await FileStore.open({ dir });
      await store.update((tx) => tx.put('c', 'k', 'before'));
      await store.close();
      fs.rmSync(path.join(dir, '.lock'));
      mount('-o', 'remount,ro', mnt);
      store = await FileStore.open({ dir });
      assert.equal(await store.read((v) => v.get('c', 'k')), 'before');
      await assert.rejects(
        store.update((tx) => tx.put('c', 'k', 'after')),
        (e: any) => code('ERR_STORE_IO')(e) && e.details.errno === 'EROFS',
      );
      mount('-o', 'remount,rw', mnt);
      assert.equal(fs.existsSync(path.join(dir, '.lock')), false);
    });

    it("a read-only file system with a crashed writer's journal: reads see the committed state through it", async () => {
      store = await FileStore.open({ dir });
      await store.update((tx) => tx.put('a', 'x', { v: 'before' }));
      await store.close();
      const r = await runChild('commit', dir, { NSNET_STORE_CRASH_AFTER: 'journal' });
      assert.equal(r.signal, 'SIGKILL');
      mount('-o', 'remount,ro', mnt);
      store = await FileStore.open({ dir });
      assert.deepEqual(await store.read((v) => [v.get('a', 'x'), v.get('new', 'z'), v.keys('a')]), [{ v: 'after' }, { v: 'after' }, ['x']]);
      await assert.rejects(
        store.update(() => 1),
        (e: any) => code('ERR_STORE_IO')(e) && e.details.errno === 'EROFS',
      );
      mount('-o', 'remount,rw', mnt);
      await store.close();
      store = await FileStore.open({ dir });
      assert.equal(logState(dir), 'applied');
      assert.deepEqual(await store.read((v) => v.get('b', 'y')), { v: 'after' });
    });

    it('opening a store that does not exist yet on a read-only file system is ERR_STORE_IO (EROFS)', async () => {
      mount('-o', 'remount,ro', mnt);
      await assert.rejects(FileStore.open({ dir }), (e: any) => code('ERR_STORE_IO')(e) && e.details.errno === 'EROFS');
      mount('-o', 'remount,rw', mnt);
    });
  });
}
