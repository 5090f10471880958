/**
 * Inputs for fuzzing the resolver: the kept corpus (test/fixtures/dns-corpus/, one datagram per
 * file) and a seeded mutator over it — bit flips, byte sets to boundary values, cuts, splices,
 * duplicated spans, counts and compression pointers planted in the header and names, and plain
 * random bytes. Seeded, so a failure replays; a failing input is written next to the corpus as
 * crash-<hash>.bin to be kept there once fixed.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const CORPUS_DIR = path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'dns-corpus');

export function corpus(): { name: string; bytes: Buffer }[] {
  return fs
    .readdirSync(CORPUS_DIR)
    .filter((f) => f.endsWith('.bin'))
    .sort()
    .map((name) => ({ name, bytes: fs.readFileSync(path.join(CORPUS_DIR, name)) }));
}

/** xorshift32: small, seeded, reproducible. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

const BOUNDARY = [0x00, 0x01, 0x3f, 0x40, 0x7f, 0x80, 0xbf, 0xc0, 0xff];

/** One mutant of `seeds` (1 to 4 mutations stacked). */
export function mutate(seeds: Buffer[], rnd: () => number): Buffer {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const int = (n: number): number => Math.floor(rnd() * n);
  let b = Buffer.from(pick(seeds));
  const rounds = 1 + int(4);
  for (let r = 0; r < rounds; r++) {
    switch (int(9)) {
      case 0:
        if (b.length) b[int(b.length)]! ^= 1 << int(8);
        break;
      case 1:
        if (b.length) b[int(b.length)] = pick(BOUNDARY);
        break;
      case 2:
        b = b.subarray(0, int(b.length + 1));
        break;
      case 3: {
        const o = pick(seeds);
        const at = int(b.length + 1);
        b = Buffer.concat([b.subarray(0, at), o.subarray(int(o.length + 1))]);
        break;
      }
      case 4: {
        const s = int(b.length + 1);
        const e = s + int(Math.min(32, b.length - s) + 1);
        b = Buffer.concat([b.subarray(0, e), b.subarray(s, e), b.subarray(e)]);
        break;
      }
      case 5:
        if (b.length >= 12) b.writeUInt16BE(pick([0, 1, 2, 255, 0x7fff, 0xffff]), 4 + 2 * int(4));
        break;
      case 6:
        if (b.length > 13) {
          const at = 12 + int(b.length - 13);
          b[at] = 0xc0 | int(64);
          b[at + 1] = int(256);
        }
        break;
      case 7:
        if (b.length >= 4) b.writeUInt16BE(int(65536), 2);
        break;
      default:
        b = Buffer.from(Array.from({ length: int(600) }, () => int(256)));
    }
  }
  return b;
}

/** Keeps a failing input beside the corpus; returns its path. */
export function keepCrash(input: Buffer): string {
  const file = path.join(CORPUS_DIR, `crash-${createHash('sha256').update(input).digest('hex').slice(0, 16)}.bin`);
  fs.writeFileSync(file, input);
  return file;
}
