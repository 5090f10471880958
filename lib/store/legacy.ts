/**
 * The journal of earlier nsnet versions, `journal.json`: written whole and synced at each
 * commit, with every document synced after it. A store that a crashed older version left with
 * one is still replayed (lib/store/filestore.ts); this version never writes it.
 * @internal
 */
import * as path from 'node:path';
import { checkCollection, checkKey, corrupt, type Op } from './documents';
import { readText } from './files';

export const JOURNAL = 'journal.json';
const FORMAT = 1;

/** The leftover journal's operations, or undefined when there is none. @throws ERR_STORE_CORRUPT */
export function legacyJournal(dir: string): Op[] | undefined {
  const file = path.join(dir, JOURNAL);
  const text = readText(file);
  if (text === null) return undefined;
  let j: { format?: unknown; ops?: unknown };
  try {
    j = JSON.parse(text);
  } catch {
    throw corrupt(file, 'not valid JSON (truncated?)');
  }
  if (j?.format !== FORMAT || !Array.isArray(j.ops)) throw corrupt(file, 'not an nsnet journal');
  return j.ops.map((o: { collection?: unknown; key?: unknown; doc?: { key?: unknown; value?: unknown } | null }) => {
    let ok: boolean;
    try {
      checkCollection(o?.collection);
      checkKey(o?.key);
      ok = o.doc === null || (typeof o.doc === 'object' && o.doc?.key === o.key && 'value' in o.doc);
    } catch {
      ok = false;
    }
    if (!ok) throw corrupt(file, 'it holds a malformed operation');
    return { collection: o.collection as string, key: o.key as string, doc: o.doc === null ? null : JSON.stringify(o.doc) };
  });
}
