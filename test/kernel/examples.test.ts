/** The runnable examples keep working: each runs in a namespace of its own and says what it made. */
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { makeNetns, useSandbox } from '../helpers/sandbox';
import { sh } from '../helpers/oracle';

const root = path.join(__dirname, '..', '..', '..');

describe('examples', () => {
  useSandbox();

  it('examples/tour.js builds and removes the README world', async () => {
    const ns = await makeNetns('ex');
    const out = sh('node', [path.join(root, 'examples', 'tour.js')], ns);
    assert.match(out, /link \d+ br0 bridge/);
    assert.match(out, /link \d+ ve-c1 veth master \d+/);
    assert.match(out, /link \d+ vx0 vxlan vni 42/);
    assert.match(out, /c1 route default via 172\.20\.0\.1/);
    assert.match(out, /c1 ip_forward 1/);
    assert.match(out, /refused: EOPNOTSUPP Unknown device type/);
    assert.deepEqual(
      JSON.parse(sh('ip', ['-j', 'link', 'show'], ns)).map((l: any) => l.ifname),
      ['lo'],
      'it cleaned up',
    );
  });

  it('examples/nftables.js publishes a port and lists it back', async () => {
    const ns = await makeNetns('ex');
    const out = sh('node', [path.join(root, 'examples', 'nftables.js')], ns);
    assert.match(out, /chain pre prerouting -100/);
    assert.match(out, /rule \d+: fib cmp meta payload lookup counter nat \(published ports\)/);
    assert.match(out, /ports: \["tcp",8080\] -> \["172\.20\.0\.2",80\] ep:c1/);
    assert.equal(sh('nft', ['list', 'tables'], ns).trim(), '', 'it cleaned up');
  });
});
