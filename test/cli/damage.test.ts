/**
 * A damaged state document, through the `nsnet` CLI as processes: listings go on with a warning
 * on stderr (stdout stays one parsable document with --json), what needs the document fails
 * with ERR_STORE_CORRUPT naming the file, `doctor` lists every damaged document, and `gc`
 * repairs (rebuilds from the kernel's marks, keeps the damaged bytes as `<name>.damaged`).
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeNetns, useSandbox } from '../helpers/sandbox';
import { type Result, cli, fails, json, stateDir } from './run';

describe('cli: a damaged state document', function () {
  this.timeout(60000);
  useSandbox();
  let dir: string;
  let run: (args: string[]) => Result;
  let c1File: string;
  let original: unknown;

  /** The one `nsnet: warning:` line on stderr. */
  const warningLines = (r: Result): string[] => r.stderr.split('\n').filter((l) => l.startsWith('nsnet: warning: '));

  beforeEach(async () => {
    const h = await makeNetns('dh');
    dir = stateDir();
    run = cli(dir, h);
    json(run(['--json', 'network', 'create', '--subnet', '172.20.0.0/16', 'app']));
    json(run(['--json', 'connect', 'app', 'c1', '--netns', await makeNetns('dc1'), '-p', '8080:80']));
    json(run(['--json', 'connect', 'app', 'c2', '--netns', await makeNetns('dc2')]));
    c1File = path.join(dir, 'endpoints', 'app%2Fc1.json');
    original = JSON.parse(fs.readFileSync(c1File, 'utf8')).value;
    fs.writeFileSync(c1File, '{"trunc'); // damage from outside: a disk, a hand
  });

  it('network ls lists everything else with a warning naming the file; --json stays one parsable document', () => {
    const r = run(['network', 'ls']);
    assert.equal(r.status, 0, r.stderr);
    const rows = r.stdout
      .trimEnd()
      .split('\n')
      .map((l) => l.split(/\s{2,}/u));
    assert.deepEqual(
      rows.map((x) => x[0]),
      ['NAME', 'app', 'bridge', 'container', 'host', 'none'],
    );
    assert.equal(rows[1]![6], '1', 'app counts the endpoint that can be read');
    assert.deepEqual(warningLines(r), [
      `nsnet: warning: WARN_STORE_DAMAGED: state store file ${c1File} is damaged (not valid JSON (truncated?)): endpoint c1 of network app is left out; \`nsnet gc\` (NetworkHost.gc()) repairs it`,
    ]);
    assert.equal(r.stderr, `${warningLines(r)[0]}\n`, 'one line, once');
    const j = run(['--json', 'network', 'ls']);
    assert.equal(j.status, 0);
    assert.deepEqual(
      JSON.parse(j.stdout)
        .map((n: any) => n.name)
        .sort(),
      ['app', 'bridge', 'container', 'host', 'none'],
    );
    assert.equal(warningLines(j).length, 1);
    const inspect = run(['--json', 'network', 'inspect', 'app']);
    assert.equal(inspect.status, 0, inspect.stderr);
    assert.deepEqual(
      JSON.parse(inspect.stdout)[0].endpoints.map((e: any) => e.id),
      ['c2'],
    );
    assert.equal(warningLines(inspect).length, 1);
  });

  it('what needs the document fails with ERR_STORE_CORRUPT naming the file; the file is left alone', () => {
    const err = fails(run(['--json', 'disconnect', 'app', 'c1']), 'ERR_STORE_CORRUPT', 1);
    assert.equal(err!.details.file, c1File);
    assert.ok(err!.message.includes(c1File));
    assert.equal(fs.readFileSync(c1File, 'utf8'), '{"trunc');
  });

  it('doctor lists every damaged document (WARN_STORE_DAMAGED); --strict fails on it', () => {
    fs.writeFileSync(path.join(dir, 'networks', 'app.json'), '');
    const r = run(['--json', 'doctor']);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    const files = [path.join(dir, 'endpoints', 'app%2Fc1.json'), path.join(dir, 'networks', 'app.json')];
    assert.deepEqual(
      report.store.damaged.map((d: any) => [d.file, d.reason]),
      [
        [files[0], 'not valid JSON (truncated?)'],
        [files[1], 'empty file'],
      ],
    );
    assert.deepEqual(
      report.warnings.filter((w: any) => w.code === 'WARN_STORE_DAMAGED').map((w: any) => w.file),
      files,
    );
    const table = run(['doctor']);
    assert.match(table.stdout, new RegExp(`^State: +${dir.replace(/[.]/gu, '\\.')}: 2 damaged document\\(s\\), see the warnings$`, 'mu'));
    assert.match(table.stdout, /^warning: WARN_STORE_DAMAGED: state store file .*app%2Fc1\.json is damaged/mu);
    const strict = run(['doctor', '--strict']);
    fails(strict, 'ERR_CHECK_FAILED', 8);
    assert.match(strict.stderr, /WARN_STORE_DAMAGED/u);
  });

  it("gc rebuilds it from the kernel's marks and keeps the damaged bytes; then all is well again", () => {
    const r = run(['gc']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(
        `^Damaged state documents:\\n  ${c1File.replace(/[.]/gu, '\\.')}: rebuilt \\(kept as .*app%2Fc1\\.json\\.damaged\\)\\n    endpoint c1 of network app: rebuilt from veth`,
        'u',
      ),
    );
    const { created: _created, ...rest } = JSON.parse(fs.readFileSync(c1File, 'utf8')).value;
    const { created: _c, ...was } = original as Record<string, unknown>;
    assert.deepEqual(rest, was);
    assert.equal(fs.readFileSync(`${c1File}.damaged`, 'utf8'), '{"trunc');
    const ls = run(['network', 'ls']);
    assert.equal(ls.stderr, '');
    assert.deepEqual(json(run(['--json', 'doctor'])).store.damaged, []);
    assert.equal(run(['gc']).stdout, 'nothing to collect\n');
    json(run(['--json', 'disconnect', 'app', 'c1']));
  });
});
