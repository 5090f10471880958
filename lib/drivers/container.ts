/**
 * Container mode (Docker's `--network container:<id>`): the endpoint joins the namespace of a
 * connected endpoint, `target` — following a target that itself shares another's — and sees
 * its interfaces, addresses and ports. Nothing is made; the target's last attachment can't be
 * disconnected while it is shared (the façade checks).
 */
import { NsnetError, invalid } from '../errors';
import { openNetns } from '../netns';
import * as v from '../validate';
import type { Driver, Recorded } from './driver';
import type { PlainNetworkRecord } from '../host-types';

/**
 * The endpoint whose namespace a container-mode endpoint joins: `target`'s own namespace
 * (following a target that itself shares another's).
 * @throws ERR_ENDPOINT_NOT_FOUND, ERR_INVALID_ARGUMENT (the target is in host mode)
 */
function rootTarget(recorded: Recorded, target: unknown): { id: string; netns: string } {
  if (typeof target !== 'string' || !target)
    throw invalid('ERR_INVALID_ARGUMENT', 'container mode needs a target: the id of the endpoint whose namespace to share', { option: 'target' });
  v.endpointId(target);
  const mine = recorded.attachments(target);
  const own = mine.find((e) => recorded.ownsNetns(e.network) && e.netns !== undefined);
  if (own) return { id: target, netns: own.netns! };
  const sharing = mine.find((e) => e.target !== undefined && e.netns !== undefined);
  if (sharing) return { id: sharing.target!, netns: sharing.netns! };
  if (mine.length) throw invalid('ERR_INVALID_ARGUMENT', `endpoint ${target} uses the host's namespace: connect to the host network instead`, { target });
  throw new NsnetError('ERR_ENDPOINT_NOT_FOUND', `no endpoint ${target} is connected: container mode joins the namespace of a connected endpoint`, {
    endpoint: target,
  });
}

/** The container driver (the predefined network `container`). */
export const containerDriver: Driver<PlainNetworkRecord> = {
  name: 'container',
  predefined: true,
  networkOptions: [],
  connectOptions: ['target'],
  ownsNetns: false,
  async realize() {},
  async unrealize() {},

  resolve(recorded, req) {
    const root = rootTarget(recorded, req.target);
    return { ...req, netns: root.netns, target: root.id };
  },

  async attach(_ctx, _net, ep) {
    openNetns(ep.netns!).close(); // still there (ERR_NETNS_NOT_FOUND)
  },
  async detach() {},
};
