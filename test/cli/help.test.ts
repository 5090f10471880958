/** --help on every command (with an example), usage errors, --version. */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../../lib/cli/main';
import { BIN, fails, nsnet } from './run';

/** Every command path of the program: ['network'], ['network', 'create'], ... */
function commandPaths(cmd: Command, prefix: string[] = []): string[][] {
  return cmd.commands.filter((c) => c.name() !== 'help').flatMap((c) => [[...prefix, c.name()], ...commandPaths(c, [...prefix, c.name()])]);
}

describe('cli: help and usage', function () {
  this.timeout(60000);
  const { program } = buildProgram({ stdout: process.stdout, stderr: process.stderr });
  const paths = commandPaths(program);

  it('has the commands of the issue', () => {
    const names = paths.map((p) => p.join(' '));
    for (const c of [
      'network create',
      'network ls',
      'network inspect',
      'network rm',
      'connect',
      'disconnect',
      'port',
      'netns add',
      'netns rm',
      'netns ls',
      'netns exec',
      'gc',
      'reconcile',
      'doctor',
      'agent',
      'daemon',
      'cni install',
      'demo',
    ])
      assert.ok(names.includes(c), `${c} in ${names.join(', ')}`);
  });

  it('nsnet --help lists the commands, an example and the exit statuses', () => {
    const r = nsnet(['--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Usage: nsnet \[options\] \[command\]/u);
    assert.match(r.stdout, /Examples?:\n {2}\$ nsnet /u);
    assert.match(r.stdout, /Exit status:/u);
    assert.match(r.stdout, /--state-dir <dir>/u);
    assert.match(r.stdout, /--host-netns <ns>/u);
    assert.match(r.stdout, /--json/u);
  });

  for (const p of commandPaths(buildProgram({ stdout: process.stdout, stderr: process.stderr }).program)) {
    it(`nsnet ${p.join(' ')} --help shows its usage and an example`, () => {
      const r = nsnet([...p, '--help']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
      assert.match(r.stdout, new RegExp(`^Usage: nsnet ${p.join(' ')}(\\|\\w+)? `, 'u'));
      assert.match(r.stdout, new RegExp(`Examples?:\\n {2}\\$ (sudo )?(nsnet ${p[0]}|npm start)`, 'u'), r.stdout);
    });
  }

  it('`nsnet help network` works like --help', () => {
    const r = nsnet(['help', 'network']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^Usage: nsnet network /u);
  });

  it('--version prints the package version', () => {
    const r = nsnet(['--version']);
    assert.equal(r.status, 0);
    assert.equal(r.stdout.trim(), require('../../../package.json').version);
  });

  it('--version and --help load none of the library: only the CLI, its error type, the option tables and commander', () => {
    const root = path.resolve(BIN, '..', '..');
    // Leaf modules the help text is made of (they import nothing but errors.js); anything else
    // (host.js, native.js, …) would mean the help pays for the library's load.
    const leaves = new Set(['dist/lib/errors.js', 'dist/lib/driver-options.js', 'dist/lib/docker/paths.js']);
    for (const args of [['--version'], ['--help'], ['network', 'create', '--help'], ['daemon', '--help'], ['cni', 'install', '--help']]) {
      const script = `process.on('exit', () => process.stderr.write(JSON.stringify(Object.keys(require.cache))));
        process.argv = [process.argv[0], ${JSON.stringify(BIN)}, ...${JSON.stringify(args)}];
        require(${JSON.stringify(BIN)});`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const loaded = (JSON.parse(r.stderr) as string[]).map((f) => path.relative(root, f));
      const library = loaded.filter((f) => f.startsWith('dist/lib/') && !f.startsWith('dist/lib/cli/') && !leaves.has(f));
      assert.deepEqual(library, [], `nsnet ${args.join(' ')} loaded ${library.join(', ')}`);
      assert.ok(!loaded.some((f) => f.endsWith('.node')), `nsnet ${args.join(' ')} loaded the addon`);
    }
  });

  it('usage errors exit 2 with `nsnet: ERR_USAGE: …` (and the JSON document with --json)', () => {
    const none = nsnet([]);
    fails(none, 'ERR_USAGE', 2);
    assert.match(none.stderr, /^Usage: nsnet/mu, 'the command list is shown');
    assert.match(fails(nsnet(['--json', 'bogus']), 'ERR_USAGE', 2)!.message, /unknown command 'bogus'/u);
    assert.match(nsnet(['netwrok']).stderr, /Did you mean network\?/u);
    fails(nsnet(['network']), 'ERR_USAGE', 2);
    assert.match(fails(nsnet(['network', 'create', '--json']), 'ERR_USAGE', 2)!.message, /missing required argument 'name'/u);
    assert.match(fails(nsnet(['network', 'ls', '--nope', '--json']), 'ERR_USAGE', 2)!.message, /unknown option '--nope'/u);
    fails(nsnet(['disconnect', 'a', 'b', 'c']), 'ERR_USAGE', 2);
    fails(nsnet(['connect', 'app', 'c1', '--netns']), 'ERR_USAGE', 2);
    fails(nsnet(['netns', 'exec', 'x']), 'ERR_USAGE', 2);
  });
});
