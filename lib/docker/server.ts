/**
 * The Docker plugin's HTTP server: POST `/<Interface>.<Method>` with a JSON body on a unix
 * socket only root can open, one JSON reply per request. Requests are served one at a time in
 * the order they came (the handlers keep what Docker hands out between calls: pools,
 * addresses, endpoints not joined yet); bodies are bounded (1 MiB). Whatever a request holds,
 * the reply is JSON and the server goes on: a handler's failure is an `{"Err"}` reply.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { NsnetError } from '../errors';
import { errorReply, unknownMethod, type Reply } from './errors';
import { CONTENT_TYPE, FIELDS, IMPLEMENTS, NO_BODY, parseBody, type Body } from './protocol';

/** The largest request body read. */
const MAX_BODY = 1 << 20;

/** What serves each method (a checked body in, the reply's body out). */
export type Routes = Readonly<Record<string, (body: Body) => Body | Promise<Body>>>;

/** Methods every plugin answers, whatever it implements. */
const ACTIVATE: Routes = { 'Plugin.Activate': () => ({ Implements: [...IMPLEMENTS] }) };

/** A request's reply: routed, its body checked, its failure an `{"Err"}` reply. */
export async function serve(routes: Routes, method: string, raw: string): Promise<Reply> {
  const all = { ...ACTIVATE, ...routes };
  const handler = Object.prototype.hasOwnProperty.call(all, method) ? all[method] : undefined;
  if (!handler || !(method in FIELDS || NO_BODY.has(method))) return unknownMethod(method);
  let body: Body;
  try {
    body = parseBody(method, raw);
  } catch (e) {
    return errorReply(e, true);
  }
  try {
    return { status: 200, body: await handler(body) };
  } catch (e) {
    return errorReply(e);
  }
}

export interface PluginServerOptions {
  /** The socket path (its directory is made, mode 0755, when missing). */
  socket: string;
  routes: Routes;
  /** Hears of every request and its outcome (for a log). */
  onRequest?: (method: string, reply: Reply, ms: number) => void;
}

/** Whether something answers on a unix socket (a live plugin) rather than a stale file. */
function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/**
 * Listens on the socket (mode 0600, made so from the start: the umask is 0177 while it is
 * bound). A stale socket file is replaced; a live one is refused.
 * @throws ERR_SOCKET_IN_USE (another process serves it), ERR_INVALID_ARGUMENT (a non-socket file)
 */
export async function listen(opts: PluginServerOptions): Promise<http.Server> {
  fs.mkdirSync(path.dirname(opts.socket), { recursive: true, mode: 0o755 });
  const st = fs.lstatSync(opts.socket, { throwIfNoEntry: false });
  if (st) {
    if (!st.isSocket()) throw new NsnetError('ERR_INVALID_ARGUMENT', `${opts.socket} exists and is not a socket`, { socket: opts.socket });
    if (await answers(opts.socket)) throw new NsnetError('ERR_SOCKET_IN_USE', `another process serves ${opts.socket}`, { socket: opts.socket });
    fs.unlinkSync(opts.socket);
  }
  let queue: Promise<unknown> = Promise.resolve();
  const server = http.createServer((req, res) => {
    const method = (req.url ?? '/').replace(/^\/+/u, '').split('?')[0]!;
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) tooBig = true;
      else chunks.push(c);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const start = Date.now();
      const run = async (): Promise<Reply> => {
        if (req.method !== 'POST') return { status: 405, body: { Err: `ERR_INVALID_ARGUMENT: ${req.method} ${method}: plugin calls are POST` } };
        if (tooBig) return errorReply(new NsnetError('ERR_INVALID_ARGUMENT', `${method}: the request body is over ${MAX_BODY} bytes`), true);
        return serve(opts.routes, method, Buffer.concat(chunks).toString('utf8'));
      };
      const done = queue.then(run).then((reply) => {
        opts.onRequest?.(method, reply, Date.now() - start);
        const text = JSON.stringify(reply.body);
        res.writeHead(reply.status, { 'Content-Type': CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
        res.end(text);
      });
      queue = done.catch(() => undefined);
    });
  });
  server.on('clientError', (_e, socket) => socket.destroy());
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.socket, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(umask);
  }
  fs.chmodSync(opts.socket, 0o600);
  return server;
}
