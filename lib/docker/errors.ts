/**
 * How the Docker plugin answers a failure: Docker reads `{"Err": "…"}` from any reply and shows
 * the text to the user ("Error response from daemon: … remote: ERR_PORT_IN_USE: …"). The text
 * starts with nsnet's error code — the same code the CLI and the library use — then the
 * message. The HTTP status follows the usual plugin practice: 400 for a request that cannot be
 * decoded, 404 for a method nsnet does not serve, 500 for a request that could not be done.
 */
import { NsnetError } from '../errors';

/** A reply: HTTP status and JSON body. */
export interface Reply {
  status: number;
  body: Record<string, unknown>;
}

/** Any thrown value as an NsnetError (bugs become ERR_INTERNAL with their message). */
export function asNsnetError(e: unknown): NsnetError {
  if (e instanceof NsnetError) return e;
  return new NsnetError('ERR_INTERNAL', e instanceof Error ? e.message : String(e));
}

/** The `{"Err"}` reply of a failure: `CODE: message` (one line). */
export function errorReply(e: unknown, decoding = false): Reply {
  const err = asNsnetError(e);
  return { status: decoding ? 400 : 500, body: { Err: `${err.code}: ${err.message.replace(/\s*\n\s*/gu, ' ')}` } };
}

/** The reply to a method nsnet does not serve. */
export function unknownMethod(method: string): Reply {
  return { status: 404, body: { Err: `ERR_NOT_AVAILABLE: nsnet does not serve ${method}` } };
}
