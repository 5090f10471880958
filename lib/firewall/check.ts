/**
 * Is the kernel's copy of nsnet's tables the skeleton of ./layout? Compares tables, chains
 * (type, hook, priority, policy), sets (types, flags) and every rule (expressions in canonical
 * form, comment, order) with the layout, and names each difference.
 */
import { isDeepStrictEqual } from 'node:util';
import { canonicalExpr } from '../nftables/expr/registry';
import type { Expr } from '../nftables/expr/types';
import type { MapSpec, Ruleset } from '../nftables/types';
import { CHAINS, INET, L2, RULES, SETS, type TableRef } from './layout';
import type { Snapshot } from './lookup';

/** The outcome of `Firewall.check()`: what of the skeleton is there, missing or changed. */
export interface FirewallCheck {
  /** Both tables exist and hold exactly the skeleton (elements aside). */
  intact: boolean;
  /** Neither table exists (nothing installed, or `nft flush ruleset`). */
  absent: boolean;
  /** One line per difference, e.g. "inet nsnet: chain forward has 8 rules, expected 9". */
  problems: string[];
}

const flat = (x: string | string[] | undefined): string => (Array.isArray(x) ? x.join(' . ') : String(x));
/** Canonical expressions without volatile state (counter values). */
const norm = (exprs: Expr[]): unknown => JSON.parse(JSON.stringify(exprs.map((e) => canonicalExpr(e))));

function checkTable(t: TableRef, rs: Ruleset | undefined, problems: string[]): void {
  const where = `${t.family} ${t.table}`;
  if (!rs) {
    problems.push(`${where}: table missing`);
    return;
  }
  const chains = CHAINS.filter((c) => c.family === t.family && c.table === t.table);
  for (const c of rs.chains) if (!chains.some((x) => x.name === c.name)) problems.push(`${where}: unexpected chain ${c.name}`);
  for (const want of chains) {
    const have = rs.chains.find((c) => c.name === want.name);
    if (!have) {
      problems.push(`${where}: chain ${want.name} missing`);
      continue;
    }
    for (const k of ['type', 'hook', 'priority', 'policy'] as const)
      if (have[k] !== want[k]) problems.push(`${where}: chain ${want.name} has ${k} ${String(have[k])}, expected ${String(want[k])}`);
    const rules = RULES.filter((r) => r.family === t.family && r.table === t.table && r.chain === want.name);
    const got = rs.rules.filter((r) => r.chain === want.name);
    if (got.length !== rules.length) problems.push(`${where}: chain ${want.name} has ${got.length} rules, expected ${rules.length}`);
    rules.forEach((r, i) => {
      const g = got[i];
      if (g && (g.comment !== r.comment || !isDeepStrictEqual(norm(g.expr), norm(r.expr))))
        problems.push(`${where}: chain ${want.name} rule ${i + 1} ("${r.comment}") differs`);
    });
  }
  const sets = SETS.filter((s) => s.where === t);
  for (const s of rs.sets) if (!sets.some((x) => x.spec.name === s.name)) problems.push(`${where}: unexpected set ${s.name}`);
  for (const { spec } of sets) {
    const have = rs.sets.find((s) => s.name === spec.name);
    if (!have) {
      problems.push(`${where}: set ${spec.name} missing`);
      continue;
    }
    const value = (spec as MapSpec).value;
    if (flat(have.key) !== flat(spec.key)) problems.push(`${where}: set ${spec.name} has key ${flat(have.key)}, expected ${flat(spec.key)}`);
    if (flat(have.value) !== flat(value)) problems.push(`${where}: set ${spec.name} has value ${flat(have.value)}, expected ${flat(value)}`);
    if (have.interval !== (spec.interval === true)) problems.push(`${where}: set ${spec.name} ${have.interval ? 'is' : 'is not'} an interval set`);
    if (have.flags.includes('constant') || have.timeout !== undefined) problems.push(`${where}: set ${spec.name} has unexpected flags ${have.flags.join(',')}`);
  }
}

/** Compares a snapshot with the layout. */
export function checkSkeleton(s: Snapshot): FirewallCheck {
  const problems: string[] = [];
  checkTable(INET, s.inet, problems);
  checkTable(L2, s.l2, problems);
  return { intact: problems.length === 0, absent: !s.inet && !s.l2, problems };
}
