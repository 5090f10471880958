/** `nsnet netns add | ls | exec | rm` as processes. */
import * as assert from 'node:assert/strict';
import { registerNetns, uniqueName, useSandbox } from '../helpers/sandbox';
import { ipJson, sh } from '../helpers/oracle';
import { fails, json, nsnet } from './run';

describe('cli: netns', function () {
  this.timeout(30000);
  useSandbox();

  it('add, ls, exec, rm', () => {
    const a = uniqueName('na');
    const b = uniqueName('nb');
    registerNetns(a);
    registerNetns(b);
    const add = nsnet(['netns', 'add', a, b]);
    assert.deepEqual([add.status, add.stdout, add.stderr], [0, '', '']);
    assert.ok(sh('ip', ['netns', 'list']).includes(a), 'iproute2 sees it');
    assert.deepEqual(
      ipJson(['link', 'show'], a).map((l: any) => [l.ifname, l.flags.includes('UP')]),
      [['lo', true]],
      'loopback up',
    );
    const ls = nsnet(['netns', 'ls']).stdout.trimEnd().split('\n');
    assert.ok(ls.includes(a) && ls.includes(b), ls.join(' '));
    assert.ok(json(nsnet(['--json', 'netns', 'ls'])).includes(a));

    const ex = nsnet(['netns', 'exec', a, '--', 'ip', '-j', 'link', 'show']);
    assert.equal(ex.status, 0, ex.stderr);
    assert.deepEqual(
      JSON.parse(ex.stdout).map((l: any) => l.ifname),
      ['lo'],
      'the command ran inside the namespace',
    );
    assert.equal(nsnet(['netns', 'exec', `/var/run/netns/${a}`, '--', 'sh', '-c', 'exit 42']).status, 42, "the command's own status");
    assert.equal(nsnet(['netns', 'exec', a, '--', 'sh', '-c', 'kill -TERM $$']).status, 128 + 15, 'a signal as 128+n');
    assert.equal(
      nsnet(['netns', 'exec', a, '--', 'sh', '-c', 'echo --json "$@"', 'x', '--json']).stdout,
      '--json --json\n',
      "arguments after -- are the command's",
    );

    fails(nsnet(['netns', 'add', a]), 'ERR_NETNS_EXISTS', 4);
    fails(nsnet(['netns', 'add', 'bad/name']), 'ERR_INVALID_NAME', 5);
    assert.deepEqual(json(nsnet(['--json', 'netns', 'rm', a, b])), { removed: [a, b] });
    assert.ok(!sh('ip', ['netns', 'list']).includes(a));
    fails(nsnet(['--json', 'netns', 'rm', a]), 'ERR_NETNS_NOT_FOUND', 3);
    fails(nsnet(['netns', 'exec', a, '--', 'true']), 'ERR_NETNS_NOT_FOUND', 3);
    fails(nsnet(['netns', 'exec', '/proc/self/ns/mnt', '--', 'true']), 'ERR_NOT_A_NETNS', 5);
    fails(nsnet(['netns', 'exec', 'x']), 'ERR_USAGE', 2);
  });
});
