/** log: log the packet to the kernel log, or (with `group`) to an nflog group for userspace. */
import { attrs, Enum, fail, fields, Flags, int, name, opt, type ExprCodec } from './kit';

/** NFT_LOGLEVEL_* (syslog levels, and audit). */
export type LogLevel = 'emerg' | 'alert' | 'crit' | 'err' | 'warning' | 'notice' | 'info' | 'debug' | 'audit';
/** NF_LOG_* flags of a kernel-log (not nflog) log. */
export type LogFlag = 'tcpseq' | 'tcpopt' | 'ipopt' | 'uid' | 'macdecode';

/**
 * Log with an optional `prefix`. Kernel log: `level` (absent: warning, the kernel's default) and
 * `flags`. nflog: `group`, `snaplen`, `qthreshold`.
 */
export interface LogExpr {
  type: 'log';
  prefix?: string;
  level?: LogLevel;
  flags?: LogFlag[];
  group?: number;
  snaplen?: number;
  qthreshold?: number;
}

const LEVEL = new Enum<LogLevel>({ emerg: 0, alert: 1, crit: 2, err: 3, warning: 4, notice: 5, info: 6, debug: 7, audit: 8 });
const FLAGS = new Flags<LogFlag>({ tcpseq: 1, tcpopt: 2, ipopt: 4, uid: 8, macdecode: 32 });

/** The `log` expression's codec (registered in ./registry). */
export const log: ExprCodec<LogExpr> = {
  type: 'log',
  kernelName: 'log',
  encode(e) {
    const f = fields(e, 'log', ['prefix', 'level', 'flags', 'group', 'snaplen', 'qthreshold']);
    const nflog = f.group !== undefined;
    if (nflog && (f.level !== undefined || f.flags !== undefined)) throw fail('log', 'level and flags are for the kernel log, not an nflog group');
    if (!nflog && (f.snaplen !== undefined || f.qthreshold !== undefined)) throw fail('log', 'snaplen and qthreshold need a group');
    const flags = FLAGS.encode(f.flags, 'log.flags');
    return attrs({
      prefix: f.prefix === undefined ? undefined : name(f.prefix, 'log.prefix', 127, true),
      group: nflog ? int(f.group, 'log.group', 0, 0xffff) : undefined,
      snaplen: f.snaplen === undefined ? undefined : int(f.snaplen, 'log.snaplen'),
      qthreshold: f.qthreshold === undefined ? undefined : int(f.qthreshold, 'log.qthreshold', 0, 0xffff),
      level: f.level === undefined ? undefined : LEVEL.encode(f.level, 'log.level'),
      flags: flags || undefined,
    });
  },
  decode(d) {
    const out: LogExpr = { type: 'log' };
    if (typeof d.prefix === 'string') out.prefix = d.prefix;
    if (typeof d.group === 'number') {
      out.group = d.group;
      if (typeof d.snaplen === 'number') out.snaplen = d.snaplen;
      if (opt(d, 'qthreshold')) out.qthreshold = opt(d, 'qthreshold');
      return out;
    }
    const level = LEVEL.decode(opt(d, 'level', 4), 'log.level');
    if (level !== 'warning') out.level = level;
    const flags = FLAGS.decode(opt(d, 'flags'), 'log.flags');
    if (flags.length) out.flags = flags;
    return out;
  },
};
