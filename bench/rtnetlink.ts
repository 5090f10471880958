/**
 * Suite "rtnetlink": link work through rtnetlink, nsnet against iproute2, pyroute2 and the npm
 * `netlink` package (0.3.0, installed into bench/.peers by scripts/bench-peers.sh).
 *
 *   create  500 veth pairs   nsnet add() one at a time, nsnet addMany(), `ip -batch`, one `ip`
 *                            process per pair, pyroute2 link('add') in a loop, npm netlink
 *                            newLink() in a loop (a hand-built IFLA_LINKINFO: it has no veth type)
 *   delete  veth pairs       nsnet removeMany() and `ip link del group N` on 500 pairs;
 *                            one by one on 100 (each single delete waits ~16 ms in the kernel):
 *                            nsnet remove(), an `ip -batch` of deletes, one `ip` process per
 *                            delete, pyroute2 link('del'), npm netlink delLink()
 *   dump    2,001 links      nsnet list() in process, `ip -json link show` as a whole process,
 *                            pyroute2 get_links() and npm netlink getLinks() in process
 *
 * Every measurement runs in a fresh network namespace, deleted afterwards; tools take turns
 * run by run so that drift of a shared machine spreads over all of them. One warm-up run of
 * each tool is done first and discarded.
 */
import { Netlink } from '../lib/index';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  PEER_MODULES,
  countLinks,
  flushLinks,
  inFreshNetns,
  ipBatch,
  nodeIn,
  now,
  python,
  rmTemp,
  rounds,
  run,
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

const CREATE_PAIRS = 500;
const BULK_DELETE_PAIRS = 500;
const SINGLE_DELETE_PAIRS = 100;
const DUMP_PAIRS = 1000; // 2,000 veth ends + lo
const GROUP = 777;

const vethA = (i: number): string => `va${i}`;
const vethB = (i: number): string => `vb${i}`;
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

function createLines(n: number): string[] {
  return range(n).map((i) => `link add ${vethA(i)} type veth peer name ${vethB(i)}`);
}

/** Makes n veth pairs in ns with one `ip -batch` (setup, untimed). */
function makePairs(ns: string, n: number): void {
  ipBatch(ns, createLines(n));
}

function expectLinks(ns: string, n: number, what: string): void {
  const got = countLinks(ns);
  if (got !== n) throw new Error(`${what}: expected ${n} links in ${ns}, found ${got}`);
}

const withHandle = <T>(ns: string, fn: (nl: Netlink) => Promise<T>): Promise<T> => withOpen(() => Netlink.open({ netns: ns }), fn);

// ------------------------------------------------------------------------------ python scripts

const PY_CREATE = `
import sys, json, time
from pyroute2 import IPRoute
n = int(sys.argv[1])
ipr = IPRoute()
t = time.perf_counter()
for i in range(n):
    ipr.link('add', ifname='va%d' % i, kind='veth', peer='vb%d' % i)
ms = (time.perf_counter() - t) * 1000
ipr.close()
print(json.dumps({'ms': ms}))
`;

const PY_DUMP = `
import sys, json, time
from pyroute2 import IPRoute
runs = int(sys.argv[1])
ipr = IPRoute()
out, count = [], 0
for r in range(runs + 1):
    t = time.perf_counter()
    links = list(ipr.get_links())
    ms = (time.perf_counter() - t) * 1000
    count = len(links)
    if r > 0:
        out.append(ms)
ipr.close()
print(json.dumps({'ms': out, 'count': count}))
`;

const PY_DELETE = `
import sys, json, time
from pyroute2 import IPRoute
n = int(sys.argv[1])
ipr = IPRoute()
t = time.perf_counter()
for i in range(n):
    ipr.link('del', ifname='va%d' % i)
ms = (time.perf_counter() - t) * 1000
ipr.close()
print(json.dumps({'ms': ms}))
`;

/**
 * The npm netlink package, timed in process inside the namespace (a node child under
 * `ip netns exec`, module from bench/.peers): `create N`, `del N` or `dump RUNS`. It has no veth
 * type, so IFLA_LINKINFO is built by hand: IFLA_INFO_KIND "veth", IFLA_INFO_DATA { VETH_INFO_PEER:
 * struct ifinfomsg + IFLA_IFNAME } (linux/if_link.h, linux/veth.h).
 */
const NL_SCRIPT = `
const { createRtNetlink, FlagsNew } = require('netlink');
const [mode, arg] = process.argv.slice(1);
const n = Number(arg);
const nla = (type, payload) => { const b = Buffer.alloc((4 + payload.length + 3) & ~3); b.writeUInt16LE(4 + payload.length, 0); b.writeUInt16LE(type, 2); payload.copy(b, 4); return b; };
const str = (s) => Buffer.from(s + '\\0');
const veth = (peer) => Buffer.concat([nla(1, str('veth')), nla(2, nla(1, Buffer.concat([Buffer.alloc(16), nla(3, str(peer))])))]);
(async () => {
  const rt = createRtNetlink();
  const ns = () => Number(process.hrtime.bigint()) / 1e6;
  let out;
  if (mode === 'create') {
    const t = ns();
    for (let i = 0; i < n; i++) await rt.newLink({}, { ifname: 'va' + i, linkinfo: veth('vb' + i) }, { flags: FlagsNew.CREATE | FlagsNew.EXCL });
    out = { ms: ns() - t };
  } else if (mode === 'del') {
    const t = ns();
    for (let i = 0; i < n; i++) await rt.delLink({}, { ifname: 'va' + i });
    out = { ms: ns() - t };
  } else {
    const ms = []; let count = 0;
    for (let r = 0; r <= n; r++) { const t = ns(); const l = await rt.getLinks(); const d = ns() - t; count = l.length; if (r > 0) ms.push(d); }
    out = { ms, count };
  }
  rt.socket.close();
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`;

/** Whether the npm netlink package is installed (bench/.peers). */
const haveNetlinkNpm = (): boolean => fs.existsSync(path.join(PEER_MODULES, 'netlink', 'package.json'));
const NL_MISSING = 'npm netlink not installed (run sh scripts/bench-peers.sh): its rows are left out';

// ------------------------------------------------------------------------------------ workloads

async function createWorkload(o: SuiteOptions): Promise<WorkloadResult> {
  const n = CREATE_PAIRS;
  const runs = Math.max(1, Math.round(7 * o.scale));
  const perOpRuns = Math.max(1, Math.round(3 * o.scale));
  const specs = range(n).map((i) => ({ kind: 'veth' as const, name: vethA(i), peer: { name: vethB(i) } }));
  const batchFile = tempFile('create.batch', createLines(n).join('\n') + '\n');
  const perOpFile = tempFile(
    'create.sh',
    'set -e\n' +
      range(n)
        .map((i) => `ip link add ${vethA(i)} type veth peer name ${vethB(i)}`)
        .join('\n') +
      '\n',
  );
  // Each measurement: a fresh namespace, the timed work, a check, then all links removed at once.
  const fresh = (body: (ns: string) => Promise<number> | number, tool: string): Measure =>
    inFreshNetns({ body, check: (ns) => expectLinks(ns, 2 * n + 1, `create (${tool})`), cleanup: flushLinks });
  try {
    const samples = await rounds(
      {
        'nsnet-single': fresh(
          (ns) =>
            withHandle(ns, async (nl) => {
              const t0 = now();
              for (const s of specs) await nl.links.add(s);
              return now() - t0;
            }),
          'nsnet-single',
        ),
        'nsnet-batch': fresh(
          (ns) =>
            withHandle(ns, async (nl) => {
              const t0 = now();
              await nl.links.addMany(specs);
              return now() - t0;
            }),
          'nsnet-batch',
        ),
        'ip-batch': fresh((ns) => run('ip', ['-n', ns, '-batch', batchFile]).ms, 'ip-batch'),
        pyroute2: fresh((ns) => python<{ ms: number }>(ns, PY_CREATE, [n]).ms, 'pyroute2'),
        ...(haveNetlinkNpm() ? { 'netlink-npm': fresh((ns) => nodeIn<{ ms: number }>(ns, NL_SCRIPT, ['create', n]).ms, 'netlink-npm') } : {}),
      },
      runs,
      1,
      o.log,
      'create',
    );
    // 500 processes take seconds and this row is no target: fewer runs, no warm-up.
    Object.assign(
      samples,
      await rounds(
        {
          'ip-per-op': fresh((ns) => run('ip', ['netns', 'exec', ns, 'sh', perOpFile]).ms, 'ip-per-op'),
        },
        perOpRuns,
        0,
        o.log,
        'create',
      ),
    );
    return {
      id: 'create',
      title: `create ${n} veth pairs`,
      unit: 'veth pair',
      reference: 'ip-batch',
      note:
        'rate = veth pairs per second. nsnet, pyroute2 and npm netlink are timed in process (handle already open); ip as whole processes ' +
        '(one-process-per-pair runs as one `sh` script of 500 `ip link add` lines under `ip netns exec`).' +
        (haveNetlinkNpm() ? '' : ` ${NL_MISSING}.`),
      tools: summarize(
        [
          {
            tool: 'nsnet-single',
            label: 'nsnet links.add() one call at a time (await each)',
            items: n,
            samples: samples['nsnet-single']!,
            timing: 'in process',
          },
          { tool: 'nsnet-batch', label: 'nsnet links.addMany(500 specs)', items: n, samples: samples['nsnet-batch']!, timing: 'in process' },
          { tool: 'ip-batch', label: 'ip -batch FILE (one process)', items: n, samples: samples['ip-batch']!, timing: 'whole process' },
          { tool: 'ip-per-op', label: 'one `ip link add` process per pair (sh script)', items: n, samples: samples['ip-per-op']!, timing: 'whole process' },
          { tool: 'pyroute2', label: "pyroute2 IPRoute().link('add') loop", items: n, samples: samples['pyroute2']!, timing: 'in process' },
          ...(samples['netlink-npm']
            ? [
                {
                  tool: 'netlink-npm',
                  label: 'npm netlink 0.3.0 newLink() loop (hand-built IFLA_LINKINFO)',
                  items: n,
                  samples: samples['netlink-npm'],
                  timing: 'in process',
                },
              ]
            : []),
        ],
        'ip-batch',
      ),
    };
  } finally {
    rmTemp(batchFile);
    rmTemp(perOpFile);
  }
}

async function deleteWorkload(o: SuiteOptions): Promise<WorkloadResult> {
  const bulk = BULK_DELETE_PAIRS;
  const single = SINGLE_DELETE_PAIRS;
  const bulkRuns = Math.max(1, Math.round(7 * o.scale));
  const singleRuns = Math.max(1, Math.round(3 * o.scale));
  const bulkNames = range(bulk).map(vethA);
  const singleNames = range(single).map(vethA);
  const groupLines = bulkNames.map((n) => `link set ${n} group ${GROUP}`);
  const delFile = tempFile('delete.batch', singleNames.map((n) => `link del ${n}`).join('\n') + '\n');
  const delScript = tempFile('delete.sh', 'set -e\n' + singleNames.map((n) => `ip link del ${n}`).join('\n') + '\n');
  // Each measurement: a fresh namespace with `pairs` veth pairs made by ip -batch (untimed),
  // the timed delete, a check that only lo is left.
  const fresh = (pairs: number, body: (ns: string) => Promise<number> | number, tool: string, prepare?: (ns: string) => void): Measure =>
    inFreshNetns({
      setup(ns) {
        makePairs(ns, pairs);
        prepare?.(ns);
      },
      body,
      check: (ns) => expectLinks(ns, 1, `delete (${tool})`),
      cleanup: flushLinks,
    });
  try {
    const bulkSamples = await rounds(
      {
        'nsnet-removeMany': fresh(
          bulk,
          (ns) =>
            withHandle(ns, async (nl) => {
              const t0 = now();
              await nl.links.removeMany(bulkNames);
              return now() - t0;
            }),
          'nsnet-removeMany',
        ),
        'nsnet-removeGroup': fresh(
          bulk,
          (ns) =>
            withHandle(ns, async (nl) => {
              const t0 = now();
              await nl.links.removeGroup(GROUP);
              return now() - t0;
            }),
          'nsnet-removeGroup',
          (ns) => ipBatch(ns, groupLines),
        ),
        'ip-del-group': fresh(
          bulk,
          (ns) => run('ip', ['-n', ns, 'link', 'del', 'group', String(GROUP)]).ms,
          'ip-del-group',
          (ns) => ipBatch(ns, groupLines),
        ),
        'ip-group-and-del': fresh(
          bulk,
          (ns) => {
            const set = run('ip', ['-n', ns, '-batch', '-'], { input: groupLines.join('\n') + '\n' }).ms;
            return set + run('ip', ['-n', ns, 'link', 'del', 'group', String(GROUP)]).ms;
          },
          'ip-group-and-del',
        ),
      },
      bulkRuns,
      1,
      o.log,
      'bulk delete',
    );
    // No warm-up here: the JIT is warm from the bulk rounds, ip is a fresh process each time,
    // and every run costs ~1.6 s of kernel waits.
    const singleSamples = await rounds(
      {
        'nsnet-remove': fresh(
          single,
          (ns) =>
            withHandle(ns, async (nl) => {
              const t0 = now();
              for (const name of singleNames) await nl.links.remove(name);
              return now() - t0;
            }),
          'nsnet-remove',
        ),
        'ip-batch-del': fresh(single, (ns) => run('ip', ['-n', ns, '-batch', delFile]).ms, 'ip-batch-del'),
        'ip-per-op-del': fresh(single, (ns) => run('ip', ['netns', 'exec', ns, 'sh', delScript]).ms, 'ip-per-op-del'),
        'pyroute2-del': fresh(single, (ns) => python<{ ms: number }>(ns, PY_DELETE, [single]).ms, 'pyroute2-del'),
        ...(haveNetlinkNpm() ? { 'netlink-npm-del': fresh(single, (ns) => nodeIn<{ ms: number }>(ns, NL_SCRIPT, ['del', single]).ms, 'netlink-npm-del') } : {}),
      },
      singleRuns,
      0,
      o.log,
      'one-by-one delete',
    );
    return {
      id: 'delete',
      title: `delete veth pairs (bulk: ${bulk}; one by one: ${single})`,
      unit: 'veth pair',
      reference: 'ip-del-group',
      note:
        `rate = veth pairs deleted per second. Bulk variants delete ${bulk} pairs; one-by-one variants delete only ${single} ` +
        `(each single delete waits ~16 ms in the kernel, so ${bulk} would take ~8 s per run), so compare rates, not times. ` +
        '`ip-del-group` times only `ip link del group N` (the group was set beforehand, untimed); `ip-group-and-del` ' +
        'times the `ip -batch` that sets the group too, which is what nsnet removeMany() does inside (after listing the links). ' +
        '`nsnet-removeGroup` is the same job as `ip-del-group`: the group set beforehand by ip, untimed.',
      tools: summarize(
        [
          {
            tool: 'nsnet-removeMany',
            label: `nsnet links.removeMany(${bulk} names)`,
            items: bulk,
            samples: bulkSamples['nsnet-removeMany']!,
            timing: 'in process',
          },
          {
            tool: 'nsnet-removeGroup',
            label: 'nsnet links.removeGroup(N) (group set beforehand)',
            items: bulk,
            samples: bulkSamples['nsnet-removeGroup']!,
            timing: 'in process',
          },
          {
            tool: 'ip-del-group',
            label: 'ip link del group N (group set beforehand)',
            items: bulk,
            samples: bulkSamples['ip-del-group']!,
            timing: 'whole process',
          },
          {
            tool: 'ip-group-and-del',
            label: 'ip -batch set group + ip link del group',
            nsnet: false,
            items: bulk,
            samples: bulkSamples['ip-group-and-del']!,
            timing: 'whole processes',
          },
          {
            tool: 'nsnet-remove',
            label: `nsnet links.remove() one by one (${single})`,
            items: single,
            samples: singleSamples['nsnet-remove']!,
            timing: 'in process',
          },
          { tool: 'ip-batch-del', label: `ip -batch of ${single} link del`, items: single, samples: singleSamples['ip-batch-del']!, timing: 'whole process' },
          {
            tool: 'ip-per-op-del',
            label: `one \`ip link del\` process per pair (${single}, sh script)`,
            items: single,
            samples: singleSamples['ip-per-op-del']!,
            timing: 'whole processes',
          },
          {
            tool: 'pyroute2-del',
            label: `pyroute2 link('del') loop (${single})`,
            items: single,
            samples: singleSamples['pyroute2-del']!,
            timing: 'in process',
          },
          ...(singleSamples['netlink-npm-del']
            ? [
                {
                  tool: 'netlink-npm-del',
                  label: `npm netlink delLink() loop (${single})`,
                  items: single,
                  samples: singleSamples['netlink-npm-del'],
                  timing: 'in process',
                },
              ]
            : []),
        ],
        'ip-del-group',
      ),
    };
  } finally {
    rmTemp(delFile);
    rmTemp(delScript);
  }
}

async function dumpWorkload(o: SuiteOptions): Promise<WorkloadResult> {
  const links = 2 * DUMP_PAIRS + 1;
  const runs = Math.max(3, Math.round(15 * o.scale));
  const pyRuns = Math.max(1, Math.round(3 * o.scale));
  // One fresh namespace per tool, filled by ip -batch (untimed); a dump changes nothing, so
  // the runs of one tool share it.
  const inNs = <T>(fn: (ns: string) => Promise<T> | T): Promise<T> =>
    withNetns(async (ns) => {
      makePairs(ns, DUMP_PAIRS);
      expectLinks(ns, links, 'dump setup');
      return fn(ns);
    }, flushLinks);

  const nsnetSamples = await inNs((ns) =>
    withHandle(ns, async (nl) => {
      const out: number[] = [];
      for (let r = 0; r <= runs; r++) {
        const t0 = now();
        const got = await nl.links.list();
        const ms = now() - t0;
        if (got.length !== links) throw new Error(`nsnet list() returned ${got.length} links, expected ${links}`);
        if (r > 0) out.push(ms);
      }
      return out;
    }),
  );
  o.log(`  dump nsnet list(): ${nsnetSamples.map((x) => x.toFixed(1)).join(' ')} ms`);

  const ipSamples = await inNs((ns) => {
    const out: number[] = [];
    const check = JSON.parse(run('ip', ['-n', ns, '-json', 'link', 'show']).stdout) as unknown[];
    if (check.length !== links) throw new Error(`ip -json link show listed ${check.length} links, expected ${links}`);
    for (let r = 0; r < runs; r++) out.push(run('ip', ['-n', ns, '-json', 'link', 'show'], { discardStdout: true }).ms);
    return out;
  });
  o.log(`  dump ip -json link show: ${ipSamples.map((x) => x.toFixed(1)).join(' ')} ms`);

  const pySamples = await inNs((ns) => {
    const r = python<{ ms: number[]; count: number }>(ns, PY_DUMP, [pyRuns]);
    if (r.count !== links) throw new Error(`pyroute2 get_links() returned ${r.count} links, expected ${links}`);
    return r.ms;
  });
  o.log(`  dump pyroute2 get_links(): ${pySamples.map((x) => x.toFixed(1)).join(' ')} ms`);

  const nlSamples = haveNetlinkNpm()
    ? await inNs((ns) => {
        const r = nodeIn<{ ms: number[]; count: number }>(ns, NL_SCRIPT, ['dump', runs]);
        if (r.count !== links) throw new Error(`npm netlink getLinks() returned ${r.count} links, expected ${links}`);
        return r.ms;
      })
    : [];
  if (nlSamples.length) o.log(`  dump npm netlink getLinks(): ${nlSamples.map((x) => x.toFixed(1)).join(' ')} ms`);

  return {
    id: 'dump',
    title: `dump ${links.toLocaleString('en-US')} links`,
    unit: 'link',
    reference: 'ip-json',
    note:
      'rate = links listed per second. nsnet list(), pyroute2 get_links() and npm netlink getLinks() are timed in process (handle already open, ' +
      'one discarded warm-up); `ip -json link show` is timed as a whole process with its output sent to /dev/null.',
    tools: summarize(
      [
        { tool: 'nsnet-list', label: 'nsnet links.list() (decoded Link objects)', items: links, samples: nsnetSamples, timing: 'in process' },
        { tool: 'ip-json', label: 'ip -json link show (whole process, output to /dev/null)', items: links, samples: ipSamples, timing: 'whole process' },
        { tool: 'pyroute2', label: 'pyroute2 IPRoute().get_links()', items: links, samples: pySamples, timing: 'in process' },
        ...(nlSamples.length ? [{ tool: 'netlink-npm', label: 'npm netlink getLinks()', items: links, samples: nlSamples, timing: 'in process' }] : []),
      ],
      'ip-json',
    ),
  };
}

// -------------------------------------------------------------------------------------- targets

function targets(w: Record<string, WorkloadResult>): TargetResult[] {
  const t = (wid: string, tool: string) => resultOf(w, wid, tool);
  const x = (n: number): string => `${n.toFixed(2)}×`;
  const single = t('create', 'nsnet-single');
  const batch = t('create', 'nsnet-batch');
  const ipb = t('create', 'ip-batch');
  const rm = t('delete', 'nsnet-removeMany');
  const rg = t('delete', 'nsnet-removeGroup');
  const ipgd = t('delete', 'ip-group-and-del');
  const grp = t('delete', 'ip-del-group');
  const list = t('dump', 'nsnet-list');
  const ipj = t('dump', 'ip-json');
  return [
    {
      id: 'create-single',
      text: 'single-call create ≥ 0.8× the `ip -batch` rate',
      met: single.ratio_vs_ref >= 0.8,
      detail: `nsnet add() one at a time ${Math.round(single.rate_per_s)}/s vs ip -batch ${Math.round(ipb.rate_per_s)}/s = ${x(single.ratio_vs_ref)}`,
    },
    {
      id: 'create-batch',
      text: 'batched create ≥ 1.0× the `ip -batch` rate',
      met: batch.ratio_vs_ref >= 1.0,
      detail: `nsnet addMany() ${Math.round(batch.rate_per_s)}/s vs ip -batch ${Math.round(ipb.rate_per_s)}/s = ${x(batch.ratio_vs_ref)}`,
    },
    {
      id: 'bulk-delete',
      text: 'a bulk-delete API at least as fast as `ip link del group` (judged on `links.removeMany(names)`)',
      met: rm.median_ms <= grp.median_ms,
      detail: `nsnet removeMany() ${rm.median_ms.toFixed(1)} ms vs ip link del group ${grp.median_ms.toFixed(1)} ms (${BULK_DELETE_PAIRS} pairs, medians) = ${x(rm.ratio_vs_ref)}`,
    },
    {
      id: 'bulk-delete-group',
      text: '(same job) `links.removeGroup(N)` at least as fast as `ip link del group N`',
      met: rg.median_ms <= grp.median_ms,
      detail:
        `nsnet removeGroup() ${rg.median_ms.toFixed(1)} ms vs ip link del group ${grp.median_ms.toFixed(1)} ms = ${x(rg.ratio_vs_ref)}; ` +
        `removeMany() vs ip -batch set group + del group (${ipgd.median_ms.toFixed(1)} ms): ${x(ipgd.median_ms / rm.median_ms)}`,
    },
    {
      id: 'dump',
      text: 'a 2,000-link dump in process no slower than `ip -json link show` as a process',
      met: list.median_ms <= ipj.median_ms,
      detail: `nsnet list() ${list.median_ms.toFixed(1)} ms vs ip -json link show ${ipj.median_ms.toFixed(1)} ms (medians) = ${x(list.ratio_vs_ref)}`,
    },
  ];
}

export const rtnetlink: Suite = {
  name: 'rtnetlink',
  title: 'links over rtnetlink: nsnet vs iproute2, pyroute2 and the npm netlink package',
  async run(o) {
    const workloads: WorkloadResult[] = [];
    o.log('create');
    workloads.push(await createWorkload(o));
    o.log('delete');
    workloads.push(await deleteWorkload(o));
    o.log('dump');
    workloads.push(await dumpWorkload(o));
    return { workloads, targets: targets(Object.fromEntries(workloads.map((w) => [w.id, w]))) };
  },
};
