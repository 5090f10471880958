/**
 * nsnet-cni and the embedded resolver: the `aliases` capability and CNI_ARGS `K8S_POD_NAME`
 * (what podman sends) become the endpoint's names, served by the daemon's resolver to the
 * network's other containers; the result's `dns` names that resolver (unless the configuration
 * has a `dns` of its own, and not when the plugin runs in node without a daemon: nothing would
 * answer); malformed aliases are error 7; the daemon holds the host namespace while a container
 * uses its DNS and lets it go once none does.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { NetworkHost } from '../../lib/host';
import { readResolvConf } from '../../lib/dns/resolvconf';
import { makeNetns, useSandbox } from '../helpers/sandbox';
import { containerId, invoke, startTestDaemon, tempStateDir, waitFor, type Invocation, type Outcome } from '../helpers/cni';
import { DnsClient } from '../helpers/dns';

const POD = (name: string): string => `IgnoreUnknown=1;K8S_POD_NAME=${name}`;

describe("nsnet-cni: names and the result's dns", function () {
  this.timeout(120000);
  useSandbox();
  let h: string;
  let stateDir: string;
  const conf = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    cniVersion: '1.0.0',
    name: 'app',
    type: 'nsnet-cni',
    subnet: '10.66.0.0/24',
    stateDir,
    hostNetns: h,
    capabilities: { aliases: true, portMappings: true },
    ...extra,
  });
  const add = async (
    socket: string | undefined,
    tag: string,
    extra: Partial<Invocation> & { config?: unknown } = {},
  ): Promise<{ r: Outcome; ns: string; id: string }> => {
    const ns = await makeNetns(tag);
    const id = containerId(tag);
    const r = await invoke({ command: 'ADD', containerId: id, netns: `/var/run/netns/${ns}`, ifname: 'eth0', config: conf(), ...extra }, socket);
    return { r, ns, id };
  };

  beforeEach(async () => {
    h = await makeNetns('nh');
    stateDir = tempStateDir();
  });

  it('K8S_POD_NAME and runtimeConfig.aliases resolve from the other containers; the result names the resolver', async () => {
    const d = await startTestDaemon();
    const web = await add(d.socket, 'nw', {
      args: POD('web'),
      config: conf({ runtimeConfig: { aliases: { app: ['www', 'shop.internal'], other: ['elsewhere'] } } }),
    });
    assert.equal(web.r.exitCode, 0, web.r.stdout + web.r.stderr);
    assert.deepEqual(
      web.r.json.dns,
      { nameservers: ['10.66.0.1'], search: readResolvConf().search },
      "the result tells the runtime to ask the network's resolver",
    );
    const other = await add(d.socket, 'no', { args: POD('client') });
    assert.equal(other.r.exitCode, 0, other.r.stdout);
    const ip = web.r.json.ips[0].address.split('/')[0];
    const client = await DnsClient.start(other.ns);
    for (const name of ['web', 'www', 'shop.internal']) assert.deepEqual(await client.resolve('10.66.0.1', name), { ok: true, result: [ip] }, name);
    assert.deepEqual(await client.reverse('10.66.0.1', ip), { ok: true, result: ['web'] });
    assert.deepEqual(await client.resolve('10.66.0.1', 'elsewhere'), { ok: false, code: 'ENOTFOUND' }, "another network's aliases are not this one's");

    const host = await NetworkHost.open({ stateDir, netns: h });
    try {
      const ep = (await host.listEndpoints('app')).find((e) => e.id === `${web.id}:eth0`)!;
      assert.deepEqual([ep.name, ep.aliases], ['web', ['www', 'shop.internal']]);
    } finally {
      await host.close();
    }
    const again = await invoke(
      {
        command: 'ADD',
        containerId: web.id,
        netns: `/var/run/netns/${web.ns}`,
        ifname: 'eth0',
        args: POD('web'),
        config: conf({ runtimeConfig: { aliases: { app: ['www', 'shop.internal'] } } }),
      },
      d.socket,
    );
    assert.equal(again.exitCode, 0, `ADD again with the same names returns it: ${again.stdout}`);
    const del = await invoke({ command: 'DEL', containerId: web.id, netns: `/var/run/netns/${web.ns}`, ifname: 'eth0', config: conf() }, d.socket);
    assert.equal(del.exitCode, 0, del.stdout);
    assert.deepEqual(await client.resolve('10.66.0.1', 'www'), { ok: false, code: 'ENOTFOUND' }, 'gone with DEL');
  });

  it("without a container name the first alias is the name; a name that is no DNS name is left out; the configuration's own dns wins", async () => {
    const d = await startTestDaemon();
    const a = await add(d.socket, 'na', { args: POD('bad..name'), config: conf({ runtimeConfig: { aliases: { app: ['db', 'pg'] } } }) });
    assert.equal(a.r.exitCode, 0, a.r.stdout);
    const ip = a.r.json.ips[0].address.split('/')[0];
    const b = await add(d.socket, 'nb', { config: conf({ dns: { nameservers: ['192.0.2.53'], search: ['corp.example'] } }) });
    assert.equal(b.r.exitCode, 0, b.r.stdout);
    assert.deepEqual(b.r.json.dns, { nameservers: ['192.0.2.53'], search: ['corp.example'] }, "the configuration's dns, as before");
    const client = await DnsClient.start(b.ns);
    assert.deepEqual(await client.reverse('10.66.0.1', ip), { ok: true, result: ['db'] }, 'PTR names the first alias');
    assert.deepEqual(await client.resolve('10.66.0.1', 'pg'), { ok: true, result: [ip] });
  });

  it('malformed aliases are error 7 and nothing is made; without a daemon the result has no dns', async () => {
    for (const [what, aliases] of [
      ['not an object', ['web']],
      ['a list that is not strings', { app: [1] }],
      ['a name that is not a DNS name', { app: ['bad name'] }],
      ["another network's list malformed", { other: 'x' }],
    ] as [string, unknown][]) {
      const { r } = await add(undefined, 'nm', { config: conf({ runtimeConfig: { aliases } }) });
      assert.equal(r.exitCode, 1, what);
      assert.equal(r.json.code, 7, `${what}: ${r.stdout}`);
    }
    assert.deepEqual(
      fs
        .readdirSync(stateDir)
        .filter((f) => f.startsWith('endpoints'))
        .flatMap((f) => fs.readdirSync(`${stateDir}/${f}`)),
      [],
      'no endpoint',
    );
    const { r } = await add(undefined, 'nf', { args: POD('web') });
    assert.equal(r.exitCode, 0, r.stdout);
    assert.deepEqual(r.json.dns, {}, 'in node, nothing would answer on the gateway: no dns');
  });

  it('the daemon holds the host namespace while a container uses its DNS, and lets it go once none does', async () => {
    const d = await startTestDaemon({ idleTimeout: 1 });
    const ino = fs.statSync(`/var/run/netns/${h}`).ino;
    // An fd of the daemon's on the namespace (opened by its path or by a pid: stat follows either).
    const held = (): boolean =>
      fs.readdirSync(`/proc/${d.process.pid}/fd`).some((f) => {
        try {
          return fs.statSync(`/proc/${d.process.pid}/fd/${f}`).ino === ino;
        } catch {
          return false;
        }
      });
    const a = await add(d.socket, 'nk', { args: POD('web') });
    assert.equal(a.r.exitCode, 0, a.r.stdout);
    assert.ok(held());
    const client = await DnsClient.start(a.ns);
    assert.ok(await waitFor(async () => (await client.resolve('10.66.0.1', 'web')).ok, 10000));
    // Past its idle time the daemon keeps the resolver (and says so) while the container is there.
    assert.ok(await waitFor(() => /unused for 1 s, kept: its networks have endpoints/u.test(d.log()), 20000), d.log());
    assert.ok(held(), 'still held while the container is there');
    assert.deepEqual((await client.resolve('10.66.0.1', 'web')).ok, true);
    const del = await invoke({ command: 'DEL', containerId: a.id, netns: `/var/run/netns/${a.ns}`, ifname: 'eth0', config: conf() }, d.socket);
    assert.equal(del.exitCode, 0, del.stdout);
    assert.ok(await waitFor(() => !held(), 20000), 'let go once no container uses it');
  });
});
