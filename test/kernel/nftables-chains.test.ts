/**
 * NfTables.tables() and chains(): the cheap listings (no rules, no elements) doctor() reads a
 * host's ruleset with. Oracle: `nft -j list ruleset` of a ruleset written by `nft -f`.
 */
import * as assert from 'node:assert/strict';
import { NfTables, NsnetError } from '../../lib/index';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';
import { nftObjects, sh } from '../helpers/oracle';

const RULESET = `
table ip filter {
  chain FORWARD { type filter hook forward priority 0; policy drop; }
  chain INPUT { type filter hook input priority 0; policy accept; }
  chain mine { ip saddr 10.0.0.1 accept; }
}
table bridge l2 {
  set ports { type ifname; elements = { "a", "b" }; }
  chain fw { type filter hook forward priority -200; policy accept; }
}
table inet nat {
  flags dormant;
  chain pre { type nat hook prerouting priority -100; policy accept; }
}
`;

describe('nftables: tables() and chains()', () => {
  useSandbox();
  let ns: string;
  let nft: NfTables;
  before(async () => {
    ns = await makeNetns('nfc');
    sh('nft', ['-f', '-'], ns, { input: RULESET });
    nft = await NfTables.open({ netns: ns });
    registerCleanup(() => nft.close(), 'close nftables handle');
  });

  it('tables() lists every table with its flags, as nft lists them', async () => {
    // (nft 1.0.6 prints table flags in JSON wrongly: the dormant flag comes from its text output.)
    const dormant = (family: string, name: string) => /^\s*flags dormant$/mu.test(sh('nft', ['list', 'table', family, name], ns));
    const oracle = nftObjects('table', ns)
      .map((t) => `${t.family} ${t.name}${dormant(t.family, t.name) ? ' dormant' : ''}`)
      .sort();
    const got = (await nft.tables()).map((t) => `${t.family} ${t.name}${t.flags & 1 ? ' dormant' : ''}`).sort();
    assert.deepEqual(got, oracle);
    assert.ok(got.includes('inet nat dormant'));
    assert.deepEqual(
      (await nft.tables({ family: 'bridge' })).map((t) => t.name),
      ['l2'],
    );
  });

  it('chains() lists every chain with type, hook, priority and policy, as nft -j does', async () => {
    const describe = (c: { family: string; table: string; name: string; type?: string; hook?: string; prio?: number; priority?: number; policy?: string }) =>
      `${c.family} ${c.table} ${c.name} ${c.type ?? '-'} ${c.hook ?? '-'} ${c.prio ?? c.priority ?? '-'} ${c.policy ?? '-'}`;
    const oracle = nftObjects('chain', ns).map(describe).sort();
    assert.equal(oracle.length, 5);
    assert.deepEqual((await nft.chains()).map(describe).sort(), oracle);
    assert.deepEqual((await nft.chains({ family: 'ip', table: 'filter' })).map((c) => c.name).sort(), ['FORWARD', 'INPUT', 'mine']);
    assert.deepEqual(await nft.chains({ family: 'ip6' }), []);
    assert.deepEqual(await nft.chains({ family: 'ip', table: 'nope' }), []);
    await assert.rejects(nft.chains({ bogus: 1 } as never), (e: unknown) => e instanceof NsnetError && e.code === 'ERR_INVALID_ARGUMENT');
  });
});
