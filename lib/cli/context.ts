/**
 * What every command gets: the global options (`--state-dir`, `--host-netns`, `--json`), a
 * NetworkHost opened on demand and closed afterwards, and one way to print results — a JSON
 * document with `--json`, text for people otherwise.
 */
import { isIP } from 'node:net';
import type { Command } from 'commander';
import type { NetworkHost } from '../host';
import type { StateWarning } from '../state/damage';
import { jsonSafe } from './exit';
import { parseNetns } from './parse';

export interface GlobalOptions {
  stateDir?: string;
  hostNetns?: string;
  json?: boolean;
  /** Overlay: etcd URLs (comma-separated) or a directory shared by the hosts. */
  controlPlane?: string;
  hostId?: string;
  /** Overlay: the underlay device or address. */
  underlay?: string;
}

/** `--control-plane`: `http(s)://…[,…]` is etcd, anything else a shared directory. */
export function parseControlPlane(s: string): { etcd: string[] } | { dir: string } {
  return /^https?:\/\//u.test(s)
    ? {
        etcd: s
          .split(',')
          .map((u) => u.trim())
          .filter(Boolean),
      }
    : { dir: s };
}

/** Where output goes (process.stdout/stderr; replaceable for embedding). */
export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export class Context {
  /** Set by `netns exec`: the status to exit with instead of 0. */
  exitStatus: number | undefined;
  /** Members added to the `--json` error document (`network rm`: what was removed before a failure). */
  errorExtra: Record<string, unknown> = {};

  constructor(
    readonly io: Io,
    private readonly program: Command,
  ) {}

  get globals(): GlobalOptions {
    return this.program.opts<GlobalOptions>();
  }

  get json(): boolean {
    return this.globals.json === true;
  }

  /** Damaged state files already warned about in this run (a listing may meet one twice). */
  private readonly warned = new Set<string>();

  /**
   * A warning of the library (a damaged state document left out): one line on stderr, once per
   * file — `nsnet: warning: CODE: message` — so stdout stays one parsable document with --json.
   */
  warn(w: StateWarning): void {
    if (this.warned.has(w.document.file)) return;
    this.warned.add(w.document.file);
    this.io.stderr.write(`nsnet: warning: ${w.code}: ${w.message}\n`);
  }

  /** A NetworkHost from the global options (the caller closes it). */
  async openHost(): Promise<NetworkHost> {
    const g = this.globals;
    // Loaded on first use: `nsnet --help`, `--version` and commands that open no host stay cheap.
    const { NetworkHost } = await import('../host');
    return NetworkHost.open({
      onWarning: (w) => this.warn(w),
      ...(g.stateDir !== undefined ? { stateDir: g.stateDir } : {}),
      ...(g.hostNetns !== undefined ? { netns: parseNetns(g.hostNetns) } : {}),
      ...(g.controlPlane !== undefined ? { controlPlane: parseControlPlane(g.controlPlane) } : {}),
      ...(g.hostId !== undefined ? { hostId: g.hostId } : {}),
      ...(g.underlay !== undefined ? { underlay: isIP(g.underlay) ? { address: g.underlay } : { dev: g.underlay } } : {}),
    });
  }

  /** Opens the NetworkHost the global options describe, runs fn, closes it (also on failure). */
  async withHost<T>(fn: (host: NetworkHost) => Promise<T>): Promise<T> {
    const host = await this.openHost();
    try {
      return await fn(host);
    } finally {
      await host.close();
    }
  }

  /** Prints `doc` as JSON with --json, else what `human()` returns (nothing when it is ''). */
  print(doc: unknown, human: () => string): void {
    if (this.json) this.io.stdout.write(`${JSON.stringify(jsonSafe(doc), null, 2)}\n`);
    else {
      const text = human();
      if (text) this.io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    }
  }

  /** Progress for people: stdout normally, stderr with --json (stdout holds the one document). */
  say(text: string): void {
    (this.json ? this.io.stderr : this.io.stdout).write(text.endsWith('\n') ? text : `${text}\n`);
  }
}

/** Adds `Example:` lines to a command's --help. */
export function example(cmd: Command, ...lines: string[]): Command {
  return cmd.addHelpText('after', `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}
