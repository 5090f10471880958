/**
 * A StoreTx in memory with FileStore's copy semantics (values are JSON copies), counting reads
 * and writes: for tests of the façade's state helpers without a kernel or a disk.
 */
import type { DamagedDocument, StoreEntry, StoreScan, StoreTx } from '../../lib/store/index';

export class MemTx implements StoreTx {
  readonly data = new Map<string, string>();
  /** Point reads (`get`) and writes (`put`, `delete`) so far. */
  gets = 0;
  puts = 0;
  get<T>(c: string, k: string): T | undefined {
    this.gets++;
    const t = this.data.get(`${c}\0${k}`);
    return t === undefined ? undefined : JSON.parse(t);
  }
  list<T>(c: string): StoreEntry<T>[] {
    return this.keys(c).map((key) => ({ key, value: JSON.parse(this.data.get(`${c}\0${key}`)!) as T }));
  }
  /** (Nothing is ever damaged in memory.) */
  scan<T>(c: string): StoreScan<T> {
    return { entries: this.list<T>(c), damaged: [] };
  }
  damaged(): DamagedDocument[] {
    return [];
  }
  setAside(d: DamagedDocument): string {
    if (d.key !== undefined) this.delete(d.collection, d.key);
    return `${d.file}.damaged`;
  }
  keys(c: string): string[] {
    return [...this.data.keys()]
      .filter((k) => k.startsWith(`${c}\0`))
      .map((k) => k.slice(c.length + 1))
      .sort();
  }
  put(c: string, k: string, v: unknown): void {
    this.puts++;
    this.data.set(`${c}\0${k}`, JSON.stringify(v));
  }
  delete(c: string, k: string): void {
    this.puts++;
    this.data.delete(`${c}\0${k}`);
  }
  /** A document as stored (undefined: none), without counting. */
  doc(c: string, k: string): unknown {
    const t = this.data.get(`${c}\0${k}`);
    return t === undefined ? undefined : JSON.parse(t);
  }
}
