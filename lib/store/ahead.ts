/**
 * A transaction's commit ahead (StoreTx.commitAhead, lib/store/types.ts): the writes made so far are
 * committed — the store's whole commit protocol — while the transaction's callback goes on (a
 * connect's kernel work), so that their fdatasync is off its path. `settle()` waits for that
 * commit and gives the writes still to commit (those made or changed after it); `revert()`, when
 * the callback failed, commits the documents as they were before it (a second record), so that
 * the transaction changes nothing, as one that fails does. The caller holds the exclusive lock
 * throughout: no reader sees the writes before the transaction ends.
 * @internal
 */
import type { Op, Snapshot } from './documents';

/** The store's commit of `ops` (FileStore.commit): `applied` is its background rest, which never rejects. */
type Commit = (ops: Op[]) => Promise<{ applied?: Promise<void> }>;

export interface Ahead {
  /** The callback returned: waits for the commit ahead (rejects as it did) and gives the writes left. */
  settle(): Promise<Op[]>;
  /** The callback failed: takes back what was committed ahead (never rejects; `warn` when it cannot). */
  revert(): Promise<void>;
}

/** Wires `tx.commitAhead()` to `commit`. */
export function commitAhead(tx: Snapshot, commit: Commit, warn: (e: Error) => void): Ahead {
  let started: { ops: Op[]; undo: Op[]; done: Promise<void> } | undefined;
  tx.onCommitAhead = () => {
    // Once; and not with documents set aside (their second names are made at the commit).
    if (started || tx.asideList().length > 0) return;
    const ops = tx.ops();
    if (ops.length === 0) return;
    const undo = tx.inverse(ops); // read before the commit puts the new documents in place
    const done = commit(ops).then((c) => c.applied); // a due checkpoint ends before any next record
    done.catch(() => undefined); // awaited by settle() or revert()
    started = { ops, undo, done };
  };
  const after = (ops: Op[], committed: Op[]): Op[] => {
    const was = new Map(committed.map((o) => [`${o.collection}\0${o.key}`, o.doc]));
    return ops.filter((o) => was.get(`${o.collection}\0${o.key}`) !== o.doc);
  };
  return {
    settle: async () => {
      tx.onCommitAhead = undefined;
      if (!started) return tx.ops();
      await started.done;
      return after(tx.ops(), started.ops);
    },
    revert: async () => {
      tx.onCommitAhead = undefined;
      if (!started) return;
      try {
        await started.done;
      } catch {
        return; // never committed: nothing to take back
      }
      try {
        await (
          await commit(started.undo)
        ).applied;
      } catch (e) {
        // The failed transaction's writes stay committed: gc/repair finds what they name.
        warn(e as Error);
      }
    },
  };
}
