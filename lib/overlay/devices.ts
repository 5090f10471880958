/**
 * Overlay mode, the kernel side on one host: per network a bridge (the containers' gateway, the
 * first address of this host's block) and one VXLAN device (the network's VNI, learning off,
 * the network's UDP port, this host's underlay address and device, the MAC the host published)
 * carrying the block's network address as a /32 — Flannel's addressing: remote blocks are
 * routed `via <their network address> dev <vx> onlink` (lib/overlay/peers.ts). Containers attach
 * to the bridge exactly as in bridge mode (lib/devices/veth.ts). Both devices carry the alias
 * `nsnet:<network>` so they can be found again without any record.
 */
import { createHash } from 'node:crypto';
import { NetlinkError, NsnetError, invalid } from '../errors';
import type { Netlink } from '../netlink/netlink';
import type { Link, VxlanLink } from '../netlink/link-types';
import { createBridge, removeBridge, type BridgeDevice } from '../devices/bridge';
import { ownerAlias } from '../devices/marks';
import * as v from '../validate';
import { gatewayOf, vtepAddress } from './controlplane';

/** Where VXLAN packets leave and arrive: a device, an address, or both (they must agree). */
export type UnderlaySpec = { dev: string; address?: string } | { address: string; dev?: string };

/** The underlay as resolved on this host. */
export interface Underlay {
  /** This host's underlay IPv4 address (the VXLAN source, what peers send to). */
  address: string;
  dev: string;
  index: number;
  mtu: number;
}

/** Bytes VXLAN adds over an IPv4 underlay: outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export const VXLAN_OVERHEAD = 50;

/** A network as realized on this host. */
export interface OverlayDevices {
  network: string;
  bridge: string;
  vxlan: string;
  vni: number;
  vxlanPort: number;
  /** The containers' (and both devices') MTU. */
  mtu: number;
  /** This host's block ("10.88.3.0/24"). */
  subnet: string;
  /** The bridge's address, the containers' default gateway ("10.88.3.1"). */
  gateway: string;
  /** The VXLAN device's address ("10.88.3.0"). */
  vtepAddress: string;
  vtepMac: string;
  underlay: Underlay;
}

const hash10 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 10);

/** Device names of a network on a host: `nsov-` (bridge) and `nsvx-` (VXLAN) + 10 hex digits of the name's hash. */
export function overlayNames(network: string): { bridge: string; vxlan: string } {
  const h = hash10(`overlay\0${network}`);
  return { bridge: `nsov-${h}`, vxlan: `nsvx-${h}` };
}

/**
 * Finds the underlay: the device (its first global IPv4 address), the device holding the
 * address, or both checked against each other.
 * @throws ERR_UNDERLAY_NOT_FOUND
 */
export async function resolveUnderlay(nl: Netlink, spec: UnderlaySpec): Promise<Underlay> {
  v.knownKeys(spec, ['dev', 'address'], 'underlay');
  const s = spec as { dev?: string; address?: string };
  if (s.dev === undefined && s.address === undefined) throw invalid('ERR_INVALID_ARGUMENT', 'underlay needs { dev } or { address }');
  if (s.dev !== undefined) v.ifname(s.dev, 'underlay device');
  const want = s.address === undefined ? undefined : v.ip(s.address, 4, 'underlay address').address;
  const addrs = (await nl.addresses.list({ family: 4 })).filter((a) => a.scope === 'universe');
  let link: Link | undefined;
  let address: string | undefined;
  if (s.dev !== undefined) {
    link = await nl.links.find(s.dev);
    if (!link) throw new NsnetError('ERR_UNDERLAY_NOT_FOUND', `underlay device ${s.dev} does not exist`, { dev: s.dev });
    const on = addrs.filter((a) => a.index === link!.index).map((a) => a.address);
    address = want ?? on[0];
    if (!address || !on.includes(address))
      throw new NsnetError('ERR_UNDERLAY_NOT_FOUND', want ? `underlay device ${s.dev} does not have ${want}` : `underlay device ${s.dev} has no IPv4 address`, {
        dev: s.dev,
        ...(want ? { address: want } : {}),
      });
  } else {
    const a = addrs.find((x) => x.address === want);
    if (!a) throw new NsnetError('ERR_UNDERLAY_NOT_FOUND', `no device of this host has the underlay address ${want}`, { address: want });
    link = await nl.links.get(a.index);
    address = want!;
  }
  return { address, dev: link.name, index: link.index, mtu: link.mtu };
}

/** The block a network's VXLAN device on this host carries (left by an earlier run), if any. */
export async function localBlock(nl: Netlink, network: string, hostPrefix: number): Promise<string | undefined> {
  const { vxlan } = overlayNames(network);
  if (!(await nl.links.find(vxlan))) return undefined;
  const a = (await nl.addresses.list({ dev: vxlan, family: 4 })).find((x) => x.prefixLength === 32);
  return a ? `${v.networkAddress(a.address, hostPrefix)}/${hostPrefix}` : undefined;
}

/** The overlay MTU: the one configured, else the underlay's minus the VXLAN overhead. @throws ERR_INVALID_MTU */
export function overlayMtu(configured: number | undefined, underlay: Underlay): number {
  const mtu = configured ?? underlay.mtu - VXLAN_OVERHEAD;
  if (mtu < 68)
    throw invalid('ERR_INVALID_MTU', `the underlay ${underlay.dev} has MTU ${underlay.mtu}: too small for VXLAN (needs ${68 + VXLAN_OVERHEAD})`, {
      mtu: underlay.mtu,
    });
  return mtu;
}

/** The plan of a network on this host, from its configuration, this host's block and underlay. */
export function planOverlay(
  cfg: { name: string; vni: number; vxlanPort: number; mtu?: number },
  subnet: string,
  vtepMac: string,
  underlay: Underlay,
): OverlayDevices {
  return {
    network: cfg.name,
    ...overlayNames(cfg.name),
    vni: cfg.vni,
    vxlanPort: cfg.vxlanPort,
    mtu: overlayMtu(cfg.mtu, underlay),
    subnet,
    gateway: gatewayOf(subnet),
    vtepAddress: vtepAddress(subnet),
    vtepMac,
    underlay,
  };
}

/** The network's bridge on this host, as lib/devices/bridge.ts makes it. */
function bridgeDevice(d: OverlayDevices): BridgeDevice {
  return { name: d.network, bridge: d.bridge, mtu: d.mtu, subnet: d.subnet, gateway: d.gateway };
}

/** Whether an existing VXLAN device is what `d` asks for. */
function vxlanMatches(l: VxlanLink, d: OverlayDevices): boolean {
  const x = l.vxlan;
  return x.vni === d.vni && x.port === d.vxlanPort && x.local === d.underlay.address && x.dev === d.underlay.index && !x.learning && l.mac === d.vtepMac;
}

/** Keeps exactly `want` among a link's IPv4 addresses; whether it had to change any. */
async function onlyAddress(nl: Netlink, dev: string, want: string): Promise<boolean> {
  const have = await nl.addresses.list({ dev, family: 4 });
  for (const a of have) if (a.cidr !== want) await nl.addresses.remove(dev, a.cidr);
  if (!have.some((a) => a.cidr === want)) await nl.addresses.add(dev, want);
  return have.length !== 1 || have[0]!.cidr !== want;
}

/**
 * Creates (or adopts and corrects) a network's bridge and VXLAN device on this host. A VXLAN
 * device of nsnet's for the network whose settings differ (another underlay, VNI, port) is made
 * again; a failure removes what this call created. Resolves to whether anything had to be made
 * or corrected (false: both devices were already exactly right).
 * @throws ERR_VNI_IN_USE (another device of this host has the VNI on the port), ERR_NAME_IN_USE
 */
export async function createOverlay(nl: Netlink, d: OverlayDevices): Promise<boolean> {
  const alias = ownerAlias(d.network);
  const links = await nl.links.list();
  const clash = links.find((l): l is VxlanLink => l.kind === 'vxlan' && l.name !== d.vxlan && l.vxlan.vni === d.vni && l.vxlan.port === d.vxlanPort);
  if (clash) throw new NsnetError('ERR_VNI_IN_USE', `VNI ${d.vni} (UDP ${d.vxlanPort}) is used by ${clash.name} on this host`, { vni: d.vni, dev: clash.name });
  const br = links.find((l) => l.name === d.bridge);
  const gateway = `${d.gateway}/${d.subnet.split('/')[1]}`;
  // (createBridge adds a missing gateway address: whether it was there is read before.)
  let changed = !br || !br.up || br.mtu !== d.mtu || !(await nl.addresses.list({ dev: d.bridge, family: 4 })).some((a) => a.cidr === gateway);
  let made = false;
  try {
    await createBridge(nl, bridgeDevice(d));
    if (await onlyAddress(nl, d.bridge, gateway)) changed = true;
    if (br && br.mtu !== d.mtu) await nl.links.set(d.bridge, { mtu: d.mtu });
    let vx = links.find((l) => l.name === d.vxlan);
    if (vx && vx.alias !== alias)
      throw new NsnetError('ERR_NAME_IN_USE', `a link named ${d.vxlan} exists and is not nsnet's VXLAN device for ${d.network}`, { dev: d.vxlan });
    if (vx && (vx.kind !== 'vxlan' || !vxlanMatches(vx, d))) {
      await nl.links.remove(vx.index).catch((e) => {
        if (!(e instanceof NetlinkError && e.code === 'ENODEV')) throw e;
      });
      vx = undefined;
    }
    if (!vx || !vx.up || vx.mtu !== d.mtu) changed = true;
    if (!vx) {
      try {
        await nl.links.add({
          kind: 'vxlan',
          name: d.vxlan,
          vni: d.vni,
          port: d.vxlanPort,
          local: d.underlay.address,
          dev: d.underlay.index,
          learning: false,
          mtu: d.mtu,
          mac: d.vtepMac,
          alias,
          addrGenMode: 'none',
        });
      } catch (e) {
        if (e instanceof NetlinkError && e.code === 'EEXIST' && !(await nl.links.find(d.vxlan)))
          throw new NsnetError('ERR_VNI_IN_USE', `VNI ${d.vni} (UDP ${d.vxlanPort}) is in use on this host: ${e.message}`, { vni: d.vni });
        throw e;
      }
      made = true;
    } else if (vx.mtu !== d.mtu) await nl.links.set(d.vxlan, { mtu: d.mtu });
    if (await onlyAddress(nl, d.vxlan, `${d.vtepAddress}/32`)) changed = true;
    await nl.links.set(d.vxlan, { up: true });
  } catch (e) {
    if (made) await nl.links.remove(d.vxlan).catch(() => undefined);
    if (!br) await removeBridge(nl, { name: d.network, bridge: d.bridge }).catch(() => undefined);
    throw e;
  }
  return changed;
}

/** Removes a network's devices from this host (routes, neighbours and FDB entries go with them). Already gone is fine. */
export async function removeOverlay(nl: Netlink, network: string): Promise<void> {
  const { bridge, vxlan } = overlayNames(network);
  const vx = await nl.links.find(vxlan);
  if (vx) {
    if (vx.alias !== ownerAlias(network))
      throw new NsnetError('ERR_NAME_IN_USE', `${vxlan} is not nsnet's VXLAN device for ${network}; left alone`, { dev: vxlan });
    await nl.links.remove(vx.index).catch((e) => {
      if (!(e instanceof NetlinkError && e.code === 'ENODEV')) throw e;
    });
  }
  await removeBridge(nl, { name: network, bridge });
}
