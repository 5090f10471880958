/**
 * DNS over TCP framing (RFC 1035 4.2.2, RFC 7766): each message is preceded by its length as two
 * bytes. A reader takes chunks as they arrive and yields whole messages; a message never exceeds
 * 65535 bytes, so what one connection can make it hold is bounded.
 * @internal
 */

export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** Adds a chunk; returns the messages it completed (possibly none). */
  push(chunk: Buffer): Buffer[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.buffered < 2) break;
      const head = this.peek(2);
      const len = head.readUInt16BE(0);
      if (this.buffered < 2 + len) break;
      const frame = this.take(2 + len);
      out.push(frame.subarray(2));
    }
    return out;
  }

  /** Bytes held for a message not yet complete. */
  get pending(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!;
    const all = Buffer.concat(this.chunks);
    this.chunks = [all];
    return all;
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const frame = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return frame;
  }
}

/** A message with its two-byte length in front. */
export function frame(msg: Buffer): Buffer {
  const out = Buffer.allocUnsafe(2 + msg.length);
  out.writeUInt16BE(msg.length, 0);
  msg.copy(out, 2);
  return out;
}
