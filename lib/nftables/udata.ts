/**
 * libnftnl's user-data TLVs (type u8, length u8, value), which nft uses to store comments with
 * rules and set elements. Written and read here so `nft list` shows nsnet's comments.
 * @internal
 */

export function encodeComment(type: number, comment: string): Buffer {
  const text = Buffer.from(`${comment}\0`, 'utf8');
  if (text.length > 255) throw new RangeError('comment longer than 254 bytes');
  return Buffer.concat([Buffer.from([type, text.length]), text]);
}

/** The string stored under `type`, if any. */
export function decodeComment(hex: unknown, type: number): string | undefined {
  if (typeof hex !== 'string') return undefined;
  const b = Buffer.from(hex, 'hex');
  for (let off = 0; off + 2 <= b.length;) {
    const t = b[off]!;
    const len = b[off + 1]!;
    if (off + 2 + len > b.length) return undefined;
    if (t === type)
      return b
        .subarray(off + 2, off + 2 + len)
        .toString('utf8')
        .replace(/\0+$/u, '');
    off += 2 + len;
  }
  return undefined;
}
