/** None mode: the container's namespace gets loopback only, up; nothing else. */
import { Netlink } from '../netlink/netlink';
import type { Driver } from './driver';
import type { PlainNetworkRecord } from '../host-types';

/** The none driver (the predefined network `none`). A disconnect leaves loopback up. */
export const noneDriver: Driver<PlainNetworkRecord> = {
  name: 'none',
  predefined: true,
  networkOptions: [],
  connectOptions: ['netns'],
  ownsNetns: true,
  async realize() {},
  async unrealize() {},
  async attach(_ctx, _net, ep) {
    const c = await Netlink.open({ netns: ep.netns! });
    try {
      await c.links.set('lo', { up: true });
    } finally {
      c.close();
    }
  },
  async detach() {},
};
