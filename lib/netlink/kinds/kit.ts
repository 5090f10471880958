/**
 * What every link-kind module shares: the codec interface a kind implements and the context
 * its encoder is given. A leaf: the kinds import it, the registry imports the kinds, and
 * nothing here imports either.
 *
 * A kind's codec turns its typed spec into the kind's part of an RTM_NEWLINK request (the
 * IFLA_INFO_DATA nest, by the addon's attribute names — native/rtnl/link.cc holds one table
 * per kind — and IFLA_LINK for a child of a parent device) and the decoded IFLA_INFO_DATA of
 * a link back into its typed view. Attribute ids: include/uapi/linux/if_link.h.
 * @internal
 */
import type { NetnsSpec } from '../../netns';
import type { LinkBase, LinkSpecBase } from '../link-base';

/** Decoded or to-be-encoded attributes, by the addon's names. */
export type Attrs = Record<string, unknown>;

/** What a kind's encoder may ask of the request being built. */
export interface KindEncodeContext {
  /** The index of a device the spec names (its `parent`, vxlan's `dev`): resolved beforehand. */
  indexOf(dev: string | number): number | undefined;
  /** Opens a namespace for the life of the request (closed by the caller); returns its fd. */
  netnsFd(ns: NetnsSpec): number;
}

/** A kind's part of an RTM_NEWLINK request. */
export interface KindEncoding {
  /** IFLA_INFO_DATA: an attribute object (the addon has a table for the kind) or raw bytes. */
  data?: Attrs | Buffer;
  /** IFLA_LINK: the index of the device this one is stacked on. */
  link?: number;
}

/** A spec of some kind (`group` may be the kind's own setting: see `ownsGroup`). */
export type AnySpec = Omit<LinkSpecBase, 'group'> & { kind: string; group?: unknown };

/** One link kind: how its spec is written and its IFLA_INFO_DATA read. */
export interface LinkKindCodec<S extends AnySpec, L extends LinkBase & { kind: string }> {
  /** The `kind` of the spec and of the typed link. */
  kind: S['kind'] & L['kind'];
  /** The IFLA_INFO_KIND values decoded by this codec (macvtap reads like macvlan). */
  kernelKinds: readonly string[];
  /**
   * Whether `group` in the spec is this kind's own setting rather than the link group
   * (vxlan: the multicast group).
   */
  ownsGroup?: boolean;
  /** The device the spec is stacked on, resolved to an index before encode(). */
  parentOf?(spec: S): string | number | undefined;
  /** Validates the kind's fields; throws NsnetError ERR_INVALID_ARGUMENT (or a more precise code). */
  encode(spec: S, ctx: KindEncodeContext): KindEncoding;
  /**
   * The typed link from the common fields and the decoded IFLA_INFO_DATA (`{}` when absent).
   * `base` is the codec's own: it adds its fields to it (`Object.assign(base, ...)`) rather than
   * copying it.
   */
  decode(data: Attrs, base: LinkBase): L;
}

/** The keys of {@link LinkSpecBase}, for kinds that refuse unknown keys. */
export const SPEC_BASE_KEYS = ['kind', 'name', 'mtu', 'mac', 'up', 'alias', 'master', 'group', 'txqlen', 'addrGenMode', 'bridgePort', 'netns'] as const;

/** A two-way table of a kernel enumeration: names in the typed form, numbers on the wire. */
export class KernelEnum<N extends string> {
  private readonly byValue: ReadonlyMap<number, N>;
  constructor(readonly values: Readonly<Record<N, number>>) {
    this.byValue = new Map((Object.entries(values) as [N, number][]).map(([k, n]) => [n, k]));
  }
  /** Whether `name` is one of the names. */
  has(name: unknown): name is N {
    return typeof name === 'string' && Object.prototype.hasOwnProperty.call(this.values, name);
  }
  /** The name of a wire value, 'unknown' for one this table lacks (a newer kernel's). */
  name(n: unknown): N | 'unknown' {
    return (typeof n === 'number' ? this.byValue.get(n) : undefined) ?? 'unknown';
  }
  /** The names, for error messages. */
  get names(): N[] {
    return Object.keys(this.values) as N[];
  }
}
