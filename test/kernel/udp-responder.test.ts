/**
 * The addon's UDP responder and change watch (native/udp): a socket served on the event loop
 * that answers what it was told to remember, from the same client, while a directory has not
 * changed, and hands everything else to JS. Real sockets in a namespace of the test's own; the
 * kernel tier also runs under ASan (scripts/asan.js).
 */
import * as assert from 'node:assert/strict';
import type * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { native, type NativeChangeWatch, type NativeUdpResponder } from '../../lib/native';
import { openNetns, type NetnsHandle } from '../../lib/netns';
import { HostSockets } from '../../lib/dns/sockets';
import { makeNetns, registerCleanup, useSandbox } from '../helpers/sandbox';
import { until } from '../helpers/dns';

const PORT = 5353;

/** A request of `len` bytes (≥ 2): the id, then `body` repeated. */
function request(id: number, body: string, len = 20): Buffer {
  const b = Buffer.alloc(len, body);
  b.writeUInt16BE(id, 0);
  return b;
}

describe('native UDP responder and change watch', function () {
  useSandbox();
  this.timeout(30000);
  let dir: string;
  let ns: NetnsHandle;
  let client: dgram.Socket;
  let watch: NativeChangeWatch;
  let responder: NativeUdpResponder | undefined;
  const misses: { data: Buffer; address: string; port: number }[] = [];
  const got: Buffer[] = [];

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsnet-udp-responder-'));
    registerCleanup(() => fs.rmSync(dir, { recursive: true, force: true }));
    ns = openNetns(await makeNetns('ur'));
    registerCleanup(() => ns.close());
    watch = new native.ChangeWatch(dir);
    registerCleanup(() => watch.close());
    misses.length = 0;
    got.length = 0;
    client = await new HostSockets(ns).udpClient(4, '127.0.0.1');
    client.on('message', (m) => got.push(m));
    registerCleanup(() => client.close());
  });

  afterEach(() => {
    responder?.close();
    responder = undefined;
  });

  async function serve(w: NativeChangeWatch | null, answer = true): Promise<NativeUdpResponder> {
    const fd = await native.inetSocket(ns.fd, { family: 4, type: 'udp', address: '127.0.0.1', port: PORT });
    const r = new native.UdpResponder(fd, w, (data, address, port) => {
      misses.push({ data, address, port });
      if (answer) r.send(Buffer.concat([data.subarray(0, 2), Buffer.from('from js')]), address, port);
    });
    responder = r;
    return r;
  }

  async function ask(q: Buffer): Promise<Buffer> {
    const before = got.length;
    client.send(q, PORT, '127.0.0.1');
    assert.ok(await until(() => got.length > before, 2000), 'an answer');
    return got[got.length - 1]!;
  }

  it('the change watch moves with writes, renames, new and removed files — not with reads — and says -1 once its directory is gone', () => {
    const g0 = watch.generation();
    assert.equal(watch.generation(), g0, 'nothing happened');
    const f = path.join(dir, 'a');
    fs.writeFileSync(f, 'x');
    const g1 = watch.generation();
    assert.ok(g1 > g0, 'a new file');
    assert.equal(watch.generation(), g1);
    fs.readFileSync(f);
    fs.closeSync(fs.openSync(f, 'r+')); // what a reader taking a shared flock does
    fs.statSync(f);
    assert.equal(watch.generation(), g1, 'reads, and a read-write open closed without a write, move nothing');
    const fd = fs.openSync(f, 'r+');
    fs.writeSync(fd, 'y', 0);
    assert.ok(watch.generation() > g1, 'a write to an open file');
    const g2 = watch.generation();
    fs.ftruncateSync(fd, 0);
    fs.closeSync(fd);
    assert.ok(watch.generation() > g2, 'a truncation');
    const g3 = watch.generation();
    fs.renameSync(f, path.join(dir, 'b'));
    assert.ok(watch.generation() > g3, 'a rename');
    const g4 = watch.generation();
    fs.unlinkSync(path.join(dir, 'b'));
    assert.ok(watch.generation() > g4, 'a removal');
    fs.rmdirSync(dir);
    assert.equal(watch.generation(), -1, 'the directory is gone');
    fs.mkdirSync(dir);
    assert.equal(watch.generation(), -1, 'a new directory at the path is not the watched one');
  });

  it('cannot watch what is not there: a coded error', () => {
    assert.throws(
      () => new native.ChangeWatch(path.join(dir, 'missing')),
      (e: Error & { code?: string }) => e.code === 'ENOENT' && /cannot watch/u.test(e.message),
    );
    assert.throws(() => new (native.ChangeWatch as unknown as new () => unknown)(), { code: 'ERR_INVALID_ARGUMENT' });
  });

  it('hands unknown datagrams to JS with their source; answers remembered ones itself, with the id of the request', async () => {
    const r = await serve(watch);
    const a = await ask(request(1, 'q'));
    assert.equal(a.toString('latin1', 2), 'from js');
    assert.equal(a.readUInt16BE(0), 1);
    assert.equal(misses.length, 1);
    assert.equal(misses[0]!.address, '127.0.0.1');
    assert.equal(misses[0]!.port, client.address().port);
    assert.deepEqual(misses[0]!.data, request(1, 'q'));

    const reply = Buffer.concat([Buffer.from([0, 0]), Buffer.from('remembered reply')]);
    assert.equal(r.remember(request(1, 'q'), '127.0.0.1', reply, 2, watch.generation()), true);
    for (let id = 2; id < 12; id++) {
      const b = await ask(request(id, 'q'));
      assert.equal(b.readUInt16BE(0), id, 'the request id');
      assert.equal(b.toString('latin1', 2), 'remembered reply');
    }
    assert.equal(misses.length, 1, 'JS saw none of the repeats');
    assert.deepEqual(r.hits(), [0, 0, 10, 0], 'counted under its tag');

    // Other bytes, or another client address: not the remembered request.
    assert.equal((await ask(request(12, 'r'))).toString('latin1', 2), 'from js');
    assert.equal(r.remember(request(1, 'q'), '127.0.0.2', reply, 0, watch.generation()), true);
    assert.equal(misses.length, 2);
  });

  it('forgets everything as soon as the directory changes, and refuses what was computed under an older generation', async () => {
    const r = await serve(watch);
    const reply = Buffer.concat([Buffer.from([0, 0]), Buffer.from('old answer..')]);
    const g = watch.generation();
    assert.equal(r.remember(request(0, 'q'), '127.0.0.1', reply, 0, g), true);
    for (let i = 0; i < 20; i++) {
      assert.equal((await ask(request(i, 'q'))).toString('latin1', 2), 'old answer..');
      // A commit: its write returns before the next request is sent.
      fs.writeFileSync(path.join(dir, 'lock'), `${i}`);
      assert.equal((await ask(request(i, 'q'))).toString('latin1', 2), 'from js', `round ${i}: the first request after the change`);
      assert.equal(r.remember(request(0, 'q'), '127.0.0.1', reply, 0, watch.generation() - 1), false, 'an older generation');
      assert.equal(r.remember(request(0, 'q'), '127.0.0.1', reply, 0, watch.generation()), true);
    }
    assert.equal(r.hits()[0], 20);
    r.forget();
    assert.equal((await ask(request(99, 'q'))).toString('latin1', 2), 'from js', 'forget()');
    fs.rmSync(dir, { recursive: true });
    assert.equal(r.remember(request(0, 'q'), '127.0.0.1', reply, 0, watch.generation()), false, 'a gone directory: nothing is remembered');
    assert.equal((await ask(request(100, 'q'))).toString('latin1', 2), 'from js');
  });

  it('without a watch, remembers nothing; short, long and truncated datagrams always go to JS', async () => {
    const r = await serve(null);
    assert.equal(r.remember(request(0, 'q'), '127.0.0.1', request(0, 'a'), 0, 0), false);
    r.close();
    const w = await serve(watch);
    const g = watch.generation();
    assert.equal(w.remember(request(0, 'q', 11), '127.0.0.1', request(0, 'a'), 0, g), false, 'shorter than a DNS header');
    assert.equal(w.remember(request(0, 'q', 513), '127.0.0.1', request(0, 'a'), 0, g), false, 'longer than 512 bytes');
    assert.equal(w.remember(request(0, 'q'), 'not an address', request(0, 'a'), 0, g), false);
    assert.equal(w.remember(request(0, 'q'), '127.0.0.1', request(0, 'a'), 4, g), false, 'no such tag');
    assert.equal((await ask(request(1, 'q', 3))).toString('latin1', 2), 'from js');
    assert.equal((await ask(request(2, 'q', 4000))).toString('latin1', 2), 'from js', 'a long datagram whole');
    assert.equal(misses.at(-1)!.data.length, 4000);
    const before = misses.length;
    client.send(request(3, 'q', 5000), PORT, '127.0.0.1'); // more than a slot: dropped, never cut
    assert.equal((await ask(request(4, 'q'))).toString('latin1', 2), 'from js', 'and it goes on');
    assert.equal(misses.length, before + 1);
  });

  it('answers a burst larger than a batch, in full', async () => {
    const r = await serve(watch);
    const reply = request(0, 'z', 30);
    assert.equal(r.remember(request(0, 'q'), '127.0.0.1', reply, 1, watch.generation()), true);
    const before = got.length;
    // 80: more than two batches of 32, fewer than the socket's default receive buffer holds.
    for (let i = 0; i < 80; i++) client.send(request(i, i % 2 ? 'q' : 'm'), PORT, '127.0.0.1');
    assert.ok(await until(() => got.length - before === 80, 5000), `80 answers (${got.length - before})`);
    assert.equal(r.hits()[1], 40);
    assert.equal(misses.length, 40);
    const ids = new Set(got.slice(before).map((b) => b.readUInt16BE(0)));
    assert.equal(ids.size, 80, 'each request its own answer');
  });

  it('close() gives the port back and is idempotent; send() after it says false; bad arguments are coded errors', async () => {
    const r = await serve(watch);
    r.close();
    r.close();
    assert.equal(r.send(request(0, 'x'), '127.0.0.1', 1), false);
    assert.deepEqual(r.hits(), [0, 0, 0, 0]);
    const again = await serve(watch); // the same port: the first socket is closed
    assert.equal((await ask(request(5, 'q'))).toString('latin1', 2), 'from js');
    again.close();
    const fd = await native.inetSocket(ns.fd, { family: 4, type: 'udp', address: '127.0.0.1', port: PORT });
    try {
      assert.throws(() => new native.UdpResponder(fd, {} as NativeChangeWatch, () => undefined), { code: 'ERR_INVALID_ARGUMENT' }, 'not a ChangeWatch');
      assert.throws(() => new native.UdpResponder(fd, watch, 'x' as unknown as () => void), { code: 'ERR_INVALID_ARGUMENT' });
      const other = new native.UdpResponder(fd, null, () => undefined);
      assert.throws(() => other.remember('x' as unknown as Buffer, '127.0.0.1', Buffer.alloc(12), 0, 0), { code: 'ERR_INVALID_ARGUMENT' });
      assert.throws(() => other.send(Buffer.alloc(1), '127.0.0.1', 'x' as unknown as number), { code: 'ERR_INVALID_ARGUMENT' });
      assert.equal(other.send(Buffer.alloc(1), 'nowhere', 1), false);
      other.close();
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  });
});
