/**
 * DNS messages in and out, through the `dns-packet` codec: a datagram becomes a {@link Query}
 * (or is dropped, or gets FORMERR/NOTIMP/BADVERS), and replies are encoded to fit the client's
 * transport. The only bytes read by hand are the header's id and flags of a message the codec
 * refused, to address the FORMERR; and the id, rewritten when a query is forwarded.
 */
import * as dnsPacket from 'dns-packet';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const QR = 0x8000;
const OPCODE_MASK = 0x7800;
/** EDNS(0) payload size the resolver advertises (DNS flag day 2020). */
export const EDNS_SIZE = 1232;
/** The largest UDP reply sent to a client that advertises more. */
const MAX_UDP = 4096;
/** Plain DNS over UDP (RFC 1035). */
const CLASSIC_UDP = 512;

/** `dns-packet` exports its question codec, which its typings leave out. */
const questionCodec = (dnsPacket as unknown as { question: { decode: { bytes: number } } }).question;
const nameCodec = (dnsPacket as unknown as { name: { encode(n: string): Buffer } }).name;

/** A query the resolver will answer. */
export interface Query {
  /** The datagram or TCP message as received. */
  raw: Buffer;
  id: number;
  /** Header flags without QR: opcode, RD, CD... */
  flags: number;
  question: dnsPacket.Question;
  /** The question's name re-encodes to the bytes the client sent (no label with a '.', no invalid UTF-8, no compression). */
  exact: boolean;
  /** The client's EDNS(0) record, when it sent one. */
  edns?: { size: number; do: boolean };
}

export type Parsed =
  | { kind: 'query'; query: Query }
  /** Not a query at all (too short, a response): no answer, so no reflection or loop. */
  | { kind: 'drop' }
  /** Answered at once: FORMERR, NOTIMP or BADVERS. */
  | { kind: 'error'; response: Buffer };

/** Decodes a query. Never throws: whatever the bytes, the outcome is one of {@link Parsed}. */
export function parseQuery(buf: Buffer): Parsed {
  if (buf.length < 12) return { kind: 'drop' };
  const id = buf.readUInt16BE(0);
  const rawFlags = buf.readUInt16BE(2);
  if (rawFlags & QR) return { kind: 'drop' };
  const opcodeBits = rawFlags & OPCODE_MASK;
  let p: dnsPacket.DecodedPacket;
  let questionBytes: number;
  try {
    p = dnsPacket.decode(buf);
    questionBytes = questionCodec.decode.bytes;
  } catch {
    return { kind: 'error', response: bare(id, opcodeBits | (rawFlags & dnsPacket.RECURSION_DESIRED), RCODE.FORMERR) };
  }
  const flags = (p.flags ?? 0) & 0x7fff;
  if (opcodeBits !== 0) return { kind: 'error', response: bare(id, flags & (OPCODE_MASK | dnsPacket.RECURSION_DESIRED), RCODE.NOTIMP) };
  const questions = p.questions ?? [];
  const opts = (p.additionals ?? []).filter((a) => a.type === 'OPT') as dnsPacket.OptAnswer[];
  if (questions.length !== 1 || opts.length > 1 || (p.answers ?? []).length > 0)
    return { kind: 'error', response: bare(id, flags & dnsPacket.RECURSION_DESIRED, RCODE.FORMERR) };
  const question = questions[0]!;
  const query: Query = {
    raw: buf,
    id,
    flags,
    question,
    exact: sameName(question.name, buf.subarray(12, 12 + questionBytes - 4)),
  };
  const opt = opts[0];
  if (opt) {
    query.edns = { size: opt.udpPayloadSize, do: opt.flag_do };
    // Only EDNS version 0 exists: anything else is BADVERS (RFC 6891 6.1.3), extended rcode 16.
    if (opt.ednsVersion !== 0) return { kind: 'error', response: encode(query, { rcode: 0, extendedRcode: 1 }) };
  }
  return { kind: 'query', query };
}

/** Whether `name` (as decoded) encodes back to exactly `wire`. */
function sameName(name: string, wire: Buffer): boolean {
  try {
    return nameCodec.encode(name).equals(wire);
  } catch {
    return false;
  }
}

/** The largest UDP reply this client takes: 512 without EDNS, its advertised size (at most 4096) with. */
export function udpLimit(q: Query): number {
  return q.edns ? Math.min(MAX_UDP, Math.max(CLASSIC_UDP, q.edns.size)) : CLASSIC_UDP;
}

export interface ReplyOptions {
  rcode: number;
  answers?: dnsPacket.Answer[];
  /** Authoritative: the network's own names. */
  aa?: boolean;
  /** Recursion available: the network forwards. */
  ra?: boolean;
  /** EDNS extended rcode (upper 8 bits). */
  extendedRcode?: number;
}

/**
 * The reply to `q`, echoing its question, with an OPT record when the client sent one. Over
 * UDP (`limit`), answers that do not fit are left out and TC set (the client asks again over TCP;
 * a client that cannot still has the records that fit).
 */
export function reply(q: Query, o: ReplyOptions, limit = 65535): Buffer {
  const out = encode(q, o);
  return out.length <= limit ? out : (trim(packetOf(q, o), limit) ?? encode(q, { ...o, answers: [] }, true));
}

function packetOf(q: Query, o: ReplyOptions, tc = false): dnsPacket.Packet {
  let flags = (q.flags & (OPCODE_MASK | dnsPacket.RECURSION_DESIRED | dnsPacket.CHECKING_DISABLED)) | (o.rcode & 0xf);
  if (o.aa) flags |= dnsPacket.AUTHORITATIVE_ANSWER;
  if (o.ra) flags |= dnsPacket.RECURSION_AVAILABLE;
  if (tc) flags |= dnsPacket.TRUNCATED_RESPONSE;
  const packet: dnsPacket.Packet = { type: 'response', id: q.id, flags, questions: [q.question], answers: o.answers ?? [], additionals: [] };
  if (q.edns || o.extendedRcode) {
    const opt = {
      type: 'OPT',
      name: '.',
      udpPayloadSize: EDNS_SIZE,
      extendedRcode: o.extendedRcode ?? 0,
      ednsVersion: 0,
      flags: q.edns?.do ? dnsPacket.DNSSEC_OK : 0,
      options: [],
    };
    packet.additionals = [opt as unknown as dnsPacket.Answer];
  }
  return packet;
}

function encode(q: Query, o: ReplyOptions, tc = false): Buffer {
  try {
    // A name the codec does not write back byte for byte (invalid UTF-8, a '.' inside a label)
    // would be echoed as something else, possibly undecodable: such a reply has no question.
    if (q.exact) return dnsPacket.encode(packetOf(q, o, tc));
  } catch {
    /* a question the codec decoded but cannot write back (an unknown class): the same */
  }
  return bare(q.id, (q.flags & (OPCODE_MASK | dnsPacket.RECURSION_DESIRED)) | (tc ? dnsPacket.TRUNCATED_RESPONSE : 0), o.rcode & 0xf);
}

/** Drops additionals (but OPT), authorities, then answers from the end, until the packet fits; sets TC. */
function trim(p: dnsPacket.Packet, limit: number): Buffer | undefined {
  try {
    p.flags = (p.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE;
    p.additionals = (p.additionals ?? []).filter((a) => a.type === 'OPT');
    p.authorities = [];
    const answers = [...(p.answers ?? [])];
    p.answers = answers;
    while (dnsPacket.encodingLength(p) > limit && answers.length > 0) answers.pop();
    if (dnsPacket.encodingLength(p) > limit) return undefined;
    const out = dnsPacket.encode(p);
    dnsPacket.decode(out); // names that do not survive a round trip (see encode): not sent
    return out;
  } catch {
    return undefined;
  }
}

/**
 * An upstream's reply cut down to the client's UDP limit (see {@link reply}); its id is the
 * client's. When the codec cannot take the reply apart: a TC reply with the question alone.
 */
export function fitUdp(full: Buffer, q: Query, limit: number): Buffer {
  if (full.length <= limit) return full;
  let p: dnsPacket.DecodedPacket | undefined;
  try {
    p = dnsPacket.decode(full);
  } catch {
    p = undefined;
  }
  const out = p
    ? trim({ type: 'response', id: q.id, flags: p.flags, questions: p.questions, answers: p.answers, authorities: [], additionals: p.additionals }, limit)
    : undefined;
  return out ?? encode(q, { rcode: full.length >= 4 ? full[3]! & 0xf : RCODE.SERVFAIL, ra: true }, true);
}

/** A header-only reply (no question): for what the codec could not decode. */
function bare(id: number, flags: number, rcode: number): Buffer {
  return dnsPacket.encode({ type: 'response', id, flags: (flags & 0x7ff0) | rcode, questions: [] });
}

/** A copy of `buf` with another message id. */
export function withId(buf: Buffer, id: number): Buffer {
  const out = Buffer.from(buf);
  out.writeUInt16BE(id, 0);
  return out;
}

/** The rcode of a reply (low 4 bits of the header), or undefined when it is too short. */
export function rcodeOf(buf: Buffer): number | undefined {
  return buf.length >= 12 ? buf[3]! & 0xf : undefined;
}

/** Whether a reply has TC set. */
export function truncated(buf: Buffer): boolean {
  return buf.length >= 12 && (buf.readUInt16BE(2) & dnsPacket.TRUNCATED_RESPONSE) !== 0;
}

/**
 * Whether `buf` is the reply to the question `q` (QR set, one question, equal up to case).
 * Never throws.
 */
export function answers(buf: Buffer, q: dnsPacket.Question): boolean {
  if (buf.length < 12 || (buf.readUInt16BE(2) & QR) === 0 || buf.readUInt16BE(4) !== 1) return false;
  try {
    const got = (dnsPacket as unknown as { question: { decode(b: Buffer, off: number): dnsPacket.Question } }).question.decode(buf, 12);
    return got.type === q.type && got.class === q.class && got.name.toLowerCase() === q.name.toLowerCase();
  } catch {
    return false;
  }
}

/** A reply with no question and an error rcode (what a server says to a query it could not parse). */
export function bareError(buf: Buffer): boolean {
  return buf.length >= 12 && (buf.readUInt16BE(2) & QR) !== 0 && buf.readUInt16BE(4) === 0 && (buf[3]! & 0xf) !== RCODE.NOERROR;
}
