// Publishes a port with one nf_tables transaction, lists it back, and removes it:
// `sudo ip netns add try && sudo ip netns exec try node examples/nftables.js`.
'use strict';
const { NfTables, REG } = require('nsnet');

async function main() {
  const nft = await NfTables.open();
  try {
    await nft.transaction((tx) => {
      tx.addTable({ family: 'inet', name: 'demo' });
      tx.addChain({ family: 'inet', table: 'demo', name: 'pre', type: 'nat', hook: 'prerouting', priority: -100, policy: 'accept' });
      tx.addMap({ family: 'inet', table: 'demo', name: 'ports', key: ['inet_proto', 'inet_service'], value: ['ipv4_addr', 'inet_service'] });
      tx.addElements({ family: 'inet', table: 'demo', set: 'ports', elements: [{ key: ['tcp', 8080], value: ['172.20.0.2', 80], comment: 'ep:c1' }] });
      tx.addRule({
        family: 'inet',
        table: 'demo',
        chain: 'pre',
        comment: 'published ports',
        expr: [
          { type: 'fib', flags: ['daddr'], result: 'addrtype', dreg: REG.r1 },
          { type: 'cmp', op: 'eq', sreg: REG.r1, data: Buffer.from([2, 0, 0, 0]) },
          { type: 'meta', key: 'l4proto', dreg: REG.r32(0) },
          { type: 'payload', base: 'transport', offset: 2, len: 2, dreg: REG.r32(1) },
          { type: 'lookup', set: 'ports', sreg: REG.r32(0), dreg: REG.r1 },
          { type: 'counter' },
          { type: 'nat', kind: 'dnat', family: 'ip', regAddrMin: REG.r1, regProtoMin: REG.r32(1) },
        ],
      });
    });
    const { chains, rules, sets } = await nft.list({ family: 'inet', table: 'demo' });
    for (const c of chains) console.log(`chain ${c.name} ${c.hook ?? ''} ${c.priority ?? ''}`.trim());
    for (const r of rules) console.log(`rule ${r.handle}: ${r.expr.map((e) => e.type).join(' ')} (${r.comment})`);
    for (const s of sets) for (const e of s.elements) console.log(`${s.name}: ${JSON.stringify(e.key)} -> ${JSON.stringify(e.value)} ${e.comment ?? ''}`);
  } finally {
    await nft
      .transaction((tx) => {
        tx.deleteTable({ family: 'inet', name: 'demo' });
      })
      .catch(() => {});
    nft.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
