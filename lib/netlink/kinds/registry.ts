/**
 * The link-kind registry: one codec per kind nsnet has a typed view of, found by the spec's
 * `kind` when encoding and by the kernel's IFLA_INFO_KIND when decoding. Adding a kind is one
 * module in this directory, one line here, its types in ../link-types.ts and, for attributes
 * by name, its table in native/rtnl/link.cc. A kind without a codec still works: the spec's
 * `parent` and raw `data` go to the kernel as they are, and it lists as kind 'other'.
 * @internal
 */
import { bridge } from './bridge';
import { ipvlan } from './ipvlan';
import type { AnySpec, LinkKindCodec } from './kit';
import { macvlan } from './macvlan';
import { veth } from './veth';
import { vlan } from './vlan';
import { vxlan } from './vxlan';
import type { LinkBase } from '../link-base';

/** A codec of any kind (the registry hands each spec to the codec of its own kind). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyKindCodec = LinkKindCodec<any, LinkBase & { kind: string }>;

const CODECS: readonly AnyKindCodec[] = [veth, bridge, vxlan, macvlan, ipvlan, vlan];

const bySpecKind: ReadonlyMap<string, AnyKindCodec> = new Map(CODECS.map((c) => [c.kind, c]));
const byKernelKind: ReadonlyMap<string, AnyKindCodec> = new Map(CODECS.flatMap((c) => c.kernelKinds.map((k) => [k, c] as const)));

/** The codec for a spec's `kind`, undefined for a kind without one. */
export function kindOfSpec(spec: AnySpec): AnyKindCodec | undefined {
  return bySpecKind.get(spec.kind);
}

/** The codec for an IFLA_INFO_KIND, undefined for a kind without one. */
export function kindOfKernel(kernelKind: string): AnyKindCodec | undefined {
  return byKernelKind.get(kernelKind);
}

/** The kinds with a typed view, by spec kind. */
export const linkKinds: readonly string[] = CODECS.map((c) => c.kind);
