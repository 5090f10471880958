/**
 * The state directory as doctor() sees it: whether a store is there, whether it can be read,
 * and its damaged documents. Nothing is created: a directory without a store is reported as
 * such. Opening the store does what every nsnet command does first (a crashed writer's
 * journal is replayed); nothing else is written.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NsnetError } from '../errors';
import { RECORD_CHECKS } from '../state/collections';
import { FileStore } from '../store/filestore';
import type { DamagedDocument } from '../store/types';

/** What doctor() found in the state directory. */
export interface StoreState {
  /** The state directory looked at (absolute). */
  dir: string;
  /** Whether it holds a store; false: nothing was recorded there yet. */
  exists: boolean;
  /** Whether the store could be read; `detail` says why not (permissions, a corrupt journal, an unknown format). */
  readable: boolean;
  detail?: string;
  /** Its damaged documents, every collection's (each is also a WARN_STORE_DAMAGED warning). */
  damaged: DamagedDocument[];
  /** The error that kept it from being read, when it is the store's own fault (not the caller's permissions). */
  unreadable?: { code: string; file?: string };
}

/** Looks at the store in `dir` (read-only, see the module's comment). */
export async function inspectStore(dir: string): Promise<StoreState> {
  const abs = path.resolve(dir);
  const state: StoreState = { dir: abs, exists: fs.existsSync(path.join(abs, 'meta.json')), readable: true, damaged: [] };
  if (!state.exists) return state;
  try {
    const store = await FileStore.open({ dir: abs });
    try {
      state.damaged = await store.read((view) => view.damaged(RECORD_CHECKS));
    } finally {
      await store.close();
    }
  } catch (e) {
    const err = e instanceof NsnetError ? e : new NsnetError('ERR_INTERNAL', String(e));
    state.readable = false;
    state.detail = `${err.code}: ${err.message}`;
    if (err.code === 'ERR_STORE_CORRUPT' || err.code === 'ERR_STORE_FORMAT') {
      state.unreadable = { code: err.code, ...(typeof err.details?.file === 'string' ? { file: err.details.file } : {}) };
    }
  }
  return state;
}
