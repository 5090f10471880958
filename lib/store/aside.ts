/**
 * Setting damaged documents aside: the file keeps its bytes under a second name,
 * `<name>.damaged` (`<name>.2.damaged`, … when that is taken by another file), which no read
 * looks at (documents end in `.json`). The second name is a hard link made — and synced —
 * before the commit that replaces or deletes the document, so no crash can lose the bytes;
 * a link left by an interrupted commit is found again by its inode and reused.
 * @internal
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ioError, syncFile, unlinkQuiet } from './files';

/** A document file and the name it is kept under. */
export interface Aside {
  file: string;
  aside: string;
}

const SUFFIX = '.damaged';

function inode(file: string): number | undefined {
  try {
    return fs.statSync(file).ino;
  } catch {
    return undefined;
  }
}

/** The name `file` is to be kept under: free, or already a link to it; none of `taken`. */
export function asideName(file: string, taken: Iterable<string>): string {
  const busy = new Set(taken);
  const ino = inode(file);
  for (let n = 1; ; n++) {
    const name = n === 1 ? `${file}${SUFFIX}` : `${file}.${n}${SUFFIX}`;
    if (busy.has(name)) continue;
    const there = inode(name);
    if (there === undefined || (ino !== undefined && there === ino)) return name;
  }
}

/**
 * Gives each file its second name and syncs the directories: the bytes are safe from here on.
 * Returns the links it made (to remove if the commit fails). A file already gone is skipped.
 */
export async function linkAsides(asides: Aside[]): Promise<string[]> {
  const made: string[] = [];
  try {
    for (const { file, aside } of asides) {
      const ino = inode(file);
      if (ino === undefined || inode(aside) === ino) continue;
      try {
        fs.linkSync(file, aside);
      } catch (e) {
        throw ioError(e, 'set aside', file);
      }
      made.push(aside);
    }
    for (const dir of new Set(asides.map((a) => path.dirname(a.file)))) await syncFile(dir);
  } catch (e) {
    for (const m of made) unlinkQuiet(m);
    throw e;
  }
  return made;
}

/**
 * Removes the first name of each file that still has it (a document whose key the commit
 * could not name: its file name is a digest, or not an encoded key). A document the commit
 * deleted is gone already; one it put anew is another file (another inode) and stays.
 */
export async function dropAsides(asides: Aside[]): Promise<void> {
  const dirs = new Set<string>();
  for (const { file, aside } of asides) {
    const ino = inode(file);
    if (ino === undefined || ino !== inode(aside)) continue;
    try {
      fs.unlinkSync(file);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw ioError(e, 'set aside', file);
    }
    dirs.add(path.dirname(file));
  }
  for (const dir of dirs) await syncFile(dir);
}
