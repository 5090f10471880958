/**
 * What the real-runtime tier asks of any container runtime it drives (podman now, dockerd
 * next): run and remove containers on nsnet networks, run a command in one, and report what is
 * left afterwards — nsnet's state, the kernel, the runtime's own records. A runtime is a class
 * over a {@link RuntimeSandbox}; the scenarios that are the same for every runtime take a
 * {@link ContainerRuntime}.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExecResult, RuntimeSandbox } from './runtime-sandbox';

/** A container to run: a busybox httpd on port 80 serving /www (and /cgi-bin/who) by default. */
export interface RunOptions {
  /** The networks, in the runtime's syntax for one `--network` each (podman: `net1`, `net1:ip=…`). */
  networks: string[];
  /** `-p` values. */
  publish?: string[];
  /** `--ip`. */
  ip?: string;
  /** More runtime flags. */
  flags?: string[];
  /** The command (default: `/bin/httpd -f -p 80 -h /www`). */
  cmd?: string[];
  /** Run in the background (default true); false runs to completion (with --rm). */
  detach?: boolean;
}

/** What nsnet, the kernel and the runtime still hold. */
export interface Leftovers {
  /** nsnet's endpoint records (endpoint ids). */
  endpoints: string[];
  /** nsnet's address leases (`network/address`). */
  leases: string[];
  /** nsnet's port ledger entries (keys). */
  ports: string[];
  /** Endpoints that own elements in nsnet's nftables sets and maps. */
  elements: string[];
  /** Host ends of veths nsnet made (`ve-…`). */
  veths: string[];
  /** Named network namespaces in the sandbox's /run/netns. */
  netns: string[];
  /** The runtime's own records of network attachments (podman: libcni's cache). */
  runtimeCache: string[];
  /** Containers the runtime knows. */
  containers: string[];
}

export interface ContainerRuntime {
  readonly name: string;
  readonly sandbox: RuntimeSandbox;
  /** nsnet's state directory, as the runtime's networks name it. */
  readonly stateDir: string;
  run(name: string, opts: RunOptions): Promise<ExecResult>;
  /** Removes containers by force (no grace period); succeeds for unknown ones. */
  rm(...names: string[]): Promise<void>;
  exec(name: string, cmd: string[]): Promise<ExecResult>;
  /** A container's address on a network. */
  ipOf(name: string, network: string): Promise<string>;
  leftovers(): Promise<Leftovers>;
}

/** The documents of one collection of nsnet's FileStore (`<stateDir>/<collection>/*.json`), as `{ key, value }`. */
export function storeDocs(stateDir: string, collection: string): { key: string; value: any }[] {
  const dir = path.join(stateDir, collection);
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  return names.map((n) => JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')) as { key: string; value: any });
}

/** What nsnet and the kernel hold (the runtime's part is filled in by the runtime). */
export async function nsnetLeftovers(sb: RuntimeSandbox, stateDir: string): Promise<Omit<Leftovers, 'runtimeCache' | 'containers'>> {
  return {
    endpoints: storeDocs(stateDir, 'endpoints')
      .map((d) => String(d.value.id))
      .sort(),
    leases: storeDocs(stateDir, 'ipam-addr')
      .map((d) => d.key)
      .sort(),
    ports: storeDocs(stateDir, 'ports')
      .map((d) => d.key)
      .sort(),
    elements: [...new Set(await sb.nsnetElementOwners())].sort(),
    veths: (await sb.links()).filter((n) => n.startsWith('ve-')).sort(),
    netns: (await sb.namedNetns()).sort(),
  };
}

/** Asserts that nothing of any container is left (networks and their bridges may stay). */
export async function assertNothingLeft(rt: ContainerRuntime, what: string): Promise<void> {
  const left = await rt.leftovers();
  assert.deepEqual(
    left,
    { endpoints: [], leases: [], ports: [], elements: [], veths: [], netns: [], runtimeCache: [], containers: [] },
    `${what}: something is left`,
  );
}

/** Waits (polling, at most `timeoutMs`) until `probe` returns a truthy value; returns it. */
export async function waitFor<T>(probe: () => Promise<T>, what: string, timeoutMs = 15000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
