/**
 * The netlink decoder under libFuzzer with ASan and UBSan (native/fuzz/, scripts/fuzz.js):
 * the targets are compiled with clang 14 — missing clang is a failure, never a skip (.ci/run
 * installs clang-14 and libclang-rt-14-dev) — and each runs for a bounded time on seeds
 * captured from the kernel. A run passes when libFuzzer exits 0, wrote no crash file and
 * executed a real number of inputs. A build with a planted out-of-bounds read proves that the
 * harness, the sanitizer and the crash reporting do catch one.
 *
 * Budget: NSNET_FUZZ_SECONDS (default 20) for the message decoder, three quarters of it for
 * the expression decoder; the machine has two shared cores.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { native } from '../../lib/native';

const ROOT = path.join(__dirname, '..', '..', '..');

interface FuzzRun {
  code: number | null;
  signal: string | null;
  out: string;
  args: string[];
  stats: Record<string, number>;
  executions: number;
  seconds: number;
  corpus: number;
  crashes: string[];
}
interface Seeds {
  decode: number;
  nftExpr: number;
  dirs: Record<'decode' | 'nft-expr', string>;
  dicts: Record<string, string>;
}
interface FuzzScript {
  build(o: { selftest?: boolean; log?: (s: string) => void }): Promise<Record<'decode' | 'nft-expr' | 'selftest', string>>;
  writeSeeds(dir: string): Seeds;
  fuzz(bin: string, o: { name: string; seconds: number; seedDir: string; dict?: string; extra?: string[] }): Promise<FuzzRun>;
  runInput(bin: string, file: string): Promise<{ code: number | null; signal: string | null; out: string }>;
}
const fuzz = require(path.join(ROOT, 'scripts', 'fuzz.js')) as FuzzScript;

const SECONDS = Number(process.env.NSNET_FUZZ_SECONDS) || 20;
// A floor that proves the target ran, far below what even a loaded machine does (thousands of
// executions per second): a number for a sanity check, not a benchmark.
const MIN_EXECUTIONS = 2000;

/** Coverage libFuzzer reports at the end ("#N DONE cov: C ft: F ..."). */
function coverage(out: string): number {
  const m = [...out.matchAll(/cov: (\d+) ft: \d+/g)].pop();
  return m ? Number(m[1]) : 0;
}

function explain(r: FuzzRun, bin: string): string {
  const crashes = r.crashes.map((f) => `${f}\n  reproduce: ${bin} ${f}\n  bytes: ${fs.readFileSync(f).toString('hex').slice(0, 400)}`);
  return `libFuzzer exit ${r.code} (${r.signal ?? 'no signal'}), ${r.executions} executions\n${crashes.join('\n')}\n${r.out.slice(-8000)}`;
}

describe('fuzzing the netlink decoders (libFuzzer, ASan, UBSan)', function () {
  this.timeout(20 * 60 * 1000); // the build: clang on two shared cores
  let bins: Record<'decode' | 'nft-expr' | 'selftest', string>;
  let seeds: Seeds;
  let seedRoot: string | undefined;
  const report: string[] = [];

  before(async () => {
    bins = await fuzz.build({ selftest: true, log: (s) => console.log(`      ${s}`) });
    seedRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-fuzz-seeds-'));
    seeds = fuzz.writeSeeds(seedRoot);
  });

  after(() => {
    if (seedRoot) fs.rmSync(seedRoot, { recursive: true, force: true });
    for (const line of report) console.log(`      ${line}`);
  });

  it('the seeds are real: every captured message decodes, and every rule gives expression seeds', () => {
    assert.ok(seeds.decode >= 100, `${seeds.decode} decode seeds`);
    assert.ok(seeds.nftExpr >= 40, `${seeds.nftExpr} expression seeds`);
    const protocols = [0, 12, 4, 6, 16];
    let decoded = 0;
    for (const f of fs.readdirSync(seeds.dirs.decode)) {
      const b = fs.readFileSync(path.join(seeds.dirs.decode, f));
      const msgs = native.decode(protocols[b[0]! % 5]!, b.subarray(1));
      assert.ok(msgs.length >= 1, f);
      decoded += msgs.length;
    }
    report.push(`fuzz seeds: ${seeds.decode} datagrams (${decoded} messages) for decode, ${seeds.nftExpr} expressions for nft-expr`);
  });

  for (const [name, share] of [
    ['decode', 1],
    ['nft-expr', 0.75],
  ] as const) {
    it(`${name}: ${Math.round(SECONDS * share)} s of fuzzing find no crash, no sanitizer report, no broken invariant`, async function () {
      this.timeout((SECONDS * share + 120) * 1000);
      const seconds = Math.round(SECONDS * share);
      const r = await fuzz.fuzz(bins[name], { name, seconds, seedDir: seeds.dirs[name], dict: seeds.dicts[name] });
      const cov = coverage(r.out);
      report.push(
        `fuzz ${name}: ${r.executions} executions in ${r.seconds.toFixed(1)} s (${Math.round(r.executions / r.seconds)}/s), ` +
          `coverage ${cov} edges, corpus ${r.corpus} inputs (${r.stats.new_units_added ?? 0} new), peak RSS ${r.stats.peak_rss_mb ?? '?'} MB`,
      );
      assert.equal(r.crashes.length, 0, explain(r, bins[name]));
      assert.equal(r.code, 0, explain(r, bins[name]));
      assert.ok(r.executions >= MIN_EXECUTIONS, `only ${r.executions} executions\n${explain(r, bins[name])}`);
      // The decoder really ran: a harness that returned early would cover a few dozen edges.
      assert.ok(cov >= 300, `coverage ${cov}\n${r.out.slice(-3000)}`);
    });
  }

  it('the harness is not vacuous: a planted out-of-bounds read is found by fuzzing and reported by ASan', async function () {
    this.timeout(120000);
    // The selftest build reads one byte past the input when it contains "nsnet-oob"; libFuzzer
    // must find such an input from the seeds alone (its memmem hook learns the word), stop,
    // and leave the input as a crash file.
    const r = await fuzz.fuzz(bins.selftest, { name: 'selftest', seconds: 60, seedDir: seeds.dirs.decode, extra: ['-seed=1'] });
    assert.notEqual(r.code, 0, 'the planted bug made the run fail');
    assert.match(r.out, /ERROR: AddressSanitizer: heap-buffer-overflow/);
    assert.match(r.out, /READ of size 1/);
    assert.match(r.out, /LLVMFuzzerTestOneInput/);
    assert.equal(r.crashes.length, 1, r.out.slice(-3000));
    const crash = fs.readFileSync(r.crashes[0]!);
    assert.ok(crash.includes('nsnet-oob'), `crash input ${crash.toString('hex')}`);
    // The crash file reproduces it, and the normal build survives the same input.
    const again = await fuzz.runInput(bins.selftest, r.crashes[0]!);
    assert.match(again.out, /heap-buffer-overflow/);
    const normal = await fuzz.runInput(bins.decode, r.crashes[0]!);
    assert.equal(normal.code, 0, normal.out.slice(-3000));
    report.push(`fuzz selftest: planted out-of-bounds read found after ${r.executions || '?'} executions (${r.seconds.toFixed(1)} s)`);
  });
});
