/**
 * Suite "nft": map elements through nf_tables, nsnet against the `nft` tool (nftables).
 *
 * The map is the published-ports map of nsnet's firewall:
 *   map pub { type inet_proto . inet_service : ipv4_addr . inet_service }
 * with 10,000 elements (tcp and udp ports → 10.x.y.z . port).
 *
 *   add, one transaction   nsnet transaction(addElements(10,000)) vs `nft -f FILE`, FILE one
 *                          `add element` statement with all 10,000 elements
 *   add, 100 transactions  nsnet: 100 awaited transactions of 100 elements; nft: 100 `nft -f`
 *                          processes of one `add element` of 100 each (the same work: 100
 *                          transactions); also, for reference, one `nft -f` with 100 `add
 *                          element` statements (nft sends a whole file as ONE transaction)
 *   list                   nsnet elements() and list() (decoded) vs `nft list map` and
 *                          `nft -j list map` as whole processes (output to /dev/null)
 *
 * Every add measurement runs in a fresh network namespace whose table and (empty) map were made
 * by `nft -f` beforehand (untimed), so every tool starts from the same kernel state; the table
 * is deleted before the namespace goes. Tools take turns run by run; one warm-up run of each is
 * discarded. nsnet is timed in process with the handle already open; nft as a whole process
 * started with `nsenter --net=/run/netns/NS nft ...` (nft has no option to pick a namespace).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NfTables } from '../lib/index';
import type { ElementSpec } from '../lib/index';
import {
  inFreshNetns,
  now,
  rmTemp,
  rounds,
  run,
  stats,
  summarize,
  tempFile,
  withHandle as withOpen,
  withNetns,
  type Measure,
  type Suite,
  type SuiteOptions,
  type TargetResult,
  type WorkloadResult,
  resultOf,
} from './common';

const N = 10000;
const CHUNK = 100;
const TABLE = 'bench';
const MAP = 'pub';
const SKELETON = `table inet ${TABLE} {\n\tmap ${MAP} {\n\t\ttype inet_proto . inet_service : ipv4_addr . inet_service\n\t}\n}\n`;

/** Element i: tcp/udp alternating, ports from 1024, values 10.x.y.z . port. */
function element(i: number): { proto: 'tcp' | 'udp'; port: number; addr: string; to: number } {
  return { proto: i % 2 ? 'udp' : 'tcp', port: 1024 + (i >> 1), addr: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, to: 1 + (i % 60000) };
}
const ELEMENTS = Array.from({ length: N }, (_, i) => element(i));
const SPECS: ElementSpec[] = ELEMENTS.map((e) => ({ key: [e.proto, e.port], value: [e.addr, e.to] }));
const nftElement = (e: ReturnType<typeof element>): string => `${e.proto} . ${e.port} : ${e.addr} . ${e.to}`;
const addElementLine = (from: number, to: number): string => `add element inet ${TABLE} ${MAP} { ${ELEMENTS.slice(from, to).map(nftElement).join(', ')} }`;

const nsPath = (ns: string): string => `/run/netns/${ns}`;
/** `nft ARGS` inside the namespace, as a whole process. */
const nft = (ns: string, args: string[], opts: { input?: string; discardStdout?: boolean } = {}) =>
  run('nsenter', [`--net=${nsPath(ns)}`, 'nft', ...args], opts);

const withHandle = <T>(ns: string, fn: (h: NfTables) => Promise<T>): Promise<T> => withOpen(() => NfTables.open({ netns: ns }), fn);

/** The number of elements of the map, by nft (the independent check). */
function countByNft(ns: string): number {
  const j = JSON.parse(nft(ns, ['-j', 'list', 'map', 'inet', TABLE, MAP]).stdout) as { nftables: Record<string, { elem?: unknown[] }>[] };
  const m = j.nftables.find((o) => 'map' in o)?.map;
  return m?.elem?.length ?? 0;
}

/**
 * A measurement in a fresh namespace holding the empty map (made by nft -f, untimed). The first
 * run of each tool is checked with nft -j as well; every run with nsnet's count (cheap).
 */
function fresh(tool: string, body: (ns: string) => Promise<number> | number): Measure {
  let checked = false;
  return inFreshNetns({
    setup: (ns) => void nft(ns, ['-f', '-'], { input: SKELETON }),
    body,
    async check(ns) {
      const got = await withHandle(ns, (h) => h.elements({ family: 'inet', table: TABLE, set: MAP }));
      if (got.length !== N) throw new Error(`${tool}: the map holds ${got.length} elements, expected ${N}`);
      if (!checked) {
        const byNft = countByNft(ns);
        if (byNft !== N) throw new Error(`${tool}: nft -j lists ${byNft} elements, expected ${N}`);
        checked = true;
      }
    },
    cleanup: (ns) => void nft(ns, ['delete', 'table', 'inet', TABLE]),
  });
}

async function addOneWorkload(o: SuiteOptions, spawnMs: number): Promise<WorkloadResult> {
  const runs = Math.max(1, Math.round(9 * o.scale));
  const file = tempFile('one.nft', addElementLine(0, N) + '\n');
  try {
    const samples = await rounds(
      {
        'nsnet-1tx': fresh('nsnet-1tx', (ns) =>
          withHandle(ns, async (h) => {
            const t0 = now();
            await h.transaction((tx) => void tx.addElements({ family: 'inet', table: TABLE, set: MAP, elements: SPECS }));
            return now() - t0;
          }),
        ),
        'nft-f': fresh('nft-f', (ns) => nft(ns, ['-f', file]).ms),
      },
      runs,
      1,
      o.log,
      'add (1 tx)',
    );
    return {
      id: 'add-1tx',
      title: `add ${N.toLocaleString('en-US')} map elements in one transaction`,
      unit: 'element',
      reference: 'nft-f',
      note:
        `rate = elements per second. Map \`inet_proto . inet_service : ipv4_addr . inet_service\`, created empty by nft -f before each run (untimed). ` +
        `nsnet is timed in process (handle open; includes asking the kernel for the map's layout); nft as a whole process ` +
        `(\`nsenter --net=… nft -f FILE\`, FILE one \`add element\` statement with all ${N.toLocaleString('en-US')} elements; ` +
        `starting nsenter + nft costs ~${spawnMs.toFixed(1)} ms of it, measured as \`nsenter … nft -v\`). Each run in a fresh namespace. ` +
        `${nftVersion()}.`,
      tools: summarize(
        [
          { tool: 'nsnet-1tx', label: `nsnet transaction(addElements(${N}))`, items: N, samples: samples['nsnet-1tx']!, timing: 'in process' },
          { tool: 'nft-f', label: `nft -f FILE (one add element of ${N})`, items: N, samples: samples['nft-f']!, timing: 'whole process' },
        ],
        'nft-f',
      ),
    };
  } finally {
    rmTemp(file);
  }
}

async function addManyWorkload(o: SuiteOptions): Promise<WorkloadResult> {
  const runs = Math.max(1, Math.round(9 * o.scale));
  const perProcRuns = Math.max(1, Math.round(3 * o.scale));
  const batches = N / CHUNK;
  const lines = Array.from({ length: batches }, (_, i) => addElementLine(i * CHUNK, (i + 1) * CHUNK));
  const oneFile = tempFile('stmts.nft', lines.join('\n') + '\n');
  const first = tempFile('0.nft', lines[0]! + '\n');
  const files = lines.map((l, i) => {
    const p = path.join(path.dirname(first), `${i}.nft`);
    fs.writeFileSync(p, l + '\n');
    return p;
  });
  // 100 nft processes, one per transaction, run by one sh script inside the namespace.
  const script = tempFile('per-tx.sh', 'set -e\n' + files.map((f) => `nft -f ${f}`).join('\n') + '\n');
  try {
    const samples = await rounds(
      {
        'nsnet-100tx': fresh('nsnet-100tx', (ns) =>
          withHandle(ns, async (h) => {
            const t0 = now();
            for (let i = 0; i < batches; i++) {
              await h.transaction((tx) => void tx.addElements({ family: 'inet', table: TABLE, set: MAP, elements: SPECS.slice(i * CHUNK, (i + 1) * CHUNK) }));
            }
            return now() - t0;
          }),
        ),
        'nft-f-100stmts': fresh('nft-f-100stmts', (ns) => nft(ns, ['-f', oneFile]).ms),
      },
      runs,
      1,
      o.log,
      'add (100 tx)',
    );
    // 100 processes take a second or so a run: fewer runs, no warm-up (nft is a new process each time).
    Object.assign(
      samples,
      await rounds(
        {
          'nft-f-100proc': fresh('nft-f-100proc', (ns) => run('nsenter', [`--net=${nsPath(ns)}`, 'sh', script]).ms),
        },
        perProcRuns,
        0,
        o.log,
        'add (100 tx)',
      ),
    );
    return {
      id: 'add-100tx',
      title: `add ${N.toLocaleString('en-US')} map elements in ${batches} transactions of ${CHUNK}`,
      unit: 'element',
      reference: 'nft-f-100proc',
      note:
        `rate = elements per second. The same work is ${batches} transactions: nsnet awaits ${batches} transactions of ${CHUNK} ` +
        `elements in process; \`nft-f-100proc\` runs ${batches} \`nft -f\` processes (one \`add element\` of ${CHUNK} each) from one ` +
        '`sh` script under nsenter. `nft-f-100stmts` is one `nft -f` of a file with the same 100 `add element` statements — ' +
        'nft sends a whole file as ONE transaction (one batch, one commit), so it does less work than 100 transactions; shown for reference.',
      tools: summarize(
        [
          {
            tool: 'nsnet-100tx',
            label: `nsnet ${batches} × transaction(addElements(${CHUNK}))`,
            items: N,
            samples: samples['nsnet-100tx']!,
            timing: 'in process',
          },
          {
            tool: 'nft-f-100proc',
            label: `${batches} nft -f processes of ${CHUNK} elements`,
            items: N,
            samples: samples['nft-f-100proc']!,
            timing: 'whole processes',
          },
          {
            tool: 'nft-f-100stmts',
            label: `one nft -f with ${batches} add element statements (one transaction)`,
            items: N,
            samples: samples['nft-f-100stmts']!,
            timing: 'whole process',
          },
        ],
        'nft-f-100proc',
      ),
    };
  } finally {
    rmTemp(oneFile);
    rmTemp(first);
    rmTemp(script);
  }
}

async function listWorkload(o: SuiteOptions): Promise<WorkloadResult> {
  const runs = Math.max(3, Math.round(11 * o.scale));
  const file = tempFile('one.nft', SKELETON + addElementLine(0, N) + '\n');
  // One namespace holds the map for every tool: listing changes nothing.
  try {
    return await withNetns(
      async (ns) => {
        nft(ns, ['-f', file]);
        if (countByNft(ns) !== N) throw new Error('list setup: the map does not hold every element');
        const samples: Record<string, number[]> = { 'nsnet-elements': [], 'nsnet-list': [], 'nft-list': [], 'nft-json': [] };
        await withHandle(ns, async (h) => {
          for (let r = 0; r <= runs; r++) {
            let t0 = now();
            const els = await h.elements({ family: 'inet', table: TABLE, set: MAP });
            const a = now() - t0;
            t0 = now();
            const rs = await h.list({ family: 'inet', table: TABLE });
            const b = now() - t0;
            if (els.length !== N || rs.sets[0]?.elements.length !== N)
              throw new Error(`nsnet listed ${els.length} / ${rs.sets[0]?.elements.length} elements, expected ${N}`);
            const c = nft(ns, ['list', 'map', 'inet', TABLE, MAP], { discardStdout: true }).ms;
            const d = nft(ns, ['-j', 'list', 'map', 'inet', TABLE, MAP], { discardStdout: true }).ms;
            if (r > 0) {
              samples['nsnet-elements']!.push(a);
              samples['nsnet-list']!.push(b);
              samples['nft-list']!.push(c);
              samples['nft-json']!.push(d);
            }
            o.log(
              `  list ${r === 0 ? 'warm-up' : `run ${r}/${runs}`}: nsnet elements() ${a.toFixed(1)} ms, list() ${b.toFixed(1)} ms, nft list ${c.toFixed(1)} ms, nft -j list ${d.toFixed(1)} ms`,
            );
          }
        });
        return {
          id: 'list',
          title: `list ${N.toLocaleString('en-US')} map elements`,
          unit: 'element',
          reference: 'nft-list',
          note:
            'rate = elements listed per second. nsnet elements() (the decoded elements of one map) and list() (the whole table: ' +
            'sets, chains, rules and elements, decoded) are timed in process with the handle open; `nft list map` and ' +
            '`nft -j list map` as whole processes with their output sent to /dev/null. Tools take turns in one namespace.',
          tools: summarize(
            [
              { tool: 'nsnet-elements', label: 'nsnet elements({ set })', items: N, samples: samples['nsnet-elements']!, timing: 'in process' },
              { tool: 'nsnet-list', label: 'nsnet list({ table })', items: N, samples: samples['nsnet-list']!, timing: 'in process' },
              { tool: 'nft-list', label: 'nft list map (text)', items: N, samples: samples['nft-list']!, timing: 'whole process' },
              { tool: 'nft-json', label: 'nft -j list map', items: N, samples: samples['nft-json']!, timing: 'whole process' },
            ],
            'nft-list',
          ),
        };
      },
      (ns) => void nft(ns, ['delete', 'table', 'inet', TABLE]),
    );
  } finally {
    rmTemp(file);
  }
}

let version: string | undefined;
function nftVersion(): string {
  version ??= run('nft', ['--version']).stdout.trim();
  return version;
}

/** What starting `nsenter --net=… nft` costs the harness (nft -v does no netlink work). */
async function spawnCost(): Promise<number> {
  return withNetns((ns) => {
    const ms: number[] = [];
    for (let i = 0; i < 11; i++) ms.push(run('nsenter', [`--net=${nsPath(ns)}`, 'nft', '-v'], { discardStdout: true }).ms);
    return stats(ms).median;
  });
}

function targets(w: Record<string, WorkloadResult>): TargetResult[] {
  const t = (wid: string, tool: string) => resultOf(w, wid, tool);
  const x = (n: number): string => `${n.toFixed(2)}×`;
  const one = t('add-1tx', 'nsnet-1tx');
  const nftOne = t('add-1tx', 'nft-f');
  const many = t('add-100tx', 'nsnet-100tx');
  const nftProcs = t('add-100tx', 'nft-f-100proc');
  const nftStmts = t('add-100tx', 'nft-f-100stmts');
  const els = t('list', 'nsnet-elements');
  const nftList = t('list', 'nft-list');
  return [
    {
      id: 'add-1tx',
      text: `${N.toLocaleString('en-US')} elements in one transaction take ≤ 1.0× the time of \`nft -f\``,
      met: one.median_ms <= nftOne.median_ms,
      detail: `nsnet ${one.median_ms.toFixed(1)} ms vs nft -f ${nftOne.median_ms.toFixed(1)} ms (medians) = ${x(one.median_ms / nftOne.median_ms)} the time`,
    },
    {
      id: 'add-100tx',
      text: `${N.toLocaleString('en-US')} elements in 100 transactions take ≤ 1.0× the time of \`nft -f\` doing the same 100 transactions`,
      met: many.median_ms <= nftProcs.median_ms,
      detail:
        `nsnet ${many.median_ms.toFixed(1)} ms vs 100 nft -f processes ${nftProcs.median_ms.toFixed(1)} ms = ${x(many.median_ms / nftProcs.median_ms)} the time; ` +
        `vs one nft -f of 100 statements (one transaction) ${nftStmts.median_ms.toFixed(1)} ms = ${x(many.median_ms / nftStmts.median_ms)}`,
    },
    {
      id: 'list',
      text: `listing ${N.toLocaleString('en-US')} elements (decoded) takes ≤ 1.0× the time of \`nft list map\``,
      met: els.median_ms <= nftList.median_ms,
      detail: `nsnet elements() ${els.median_ms.toFixed(1)} ms vs nft list map ${nftList.median_ms.toFixed(1)} ms = ${x(els.median_ms / nftList.median_ms)} the time`,
    },
  ];
}

export const nftSuite: Suite = {
  name: 'nft',
  title: 'nf_tables map elements: nsnet vs nft -f',
  async run(o) {
    const spawnMs = await spawnCost();
    const workloads: WorkloadResult[] = [];
    o.log('add, one transaction');
    workloads.push(await addOneWorkload(o, spawnMs));
    o.log('add, 100 transactions');
    workloads.push(await addManyWorkload(o));
    o.log('list');
    workloads.push(await listWorkload(o));
    return { workloads, targets: targets(Object.fromEntries(workloads.map((w) => [w.id, w]))) };
  },
};
