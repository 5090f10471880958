/** Assertions shared by the kernel tests. */
import * as assert from 'node:assert/strict';
import { NetlinkError, NsnetError } from '../../lib/index';

/**
 * Asserts that a promise (or a function returning one) rejects with an NsnetError of this code
 * and, when given, for kernel errors this operation (a string) or a message matching a RegExp.
 */
export async function rejectsWith(p: Promise<unknown> | (() => Promise<unknown>), code: string, operation?: string | RegExp): Promise<void> {
  await assert.rejects(typeof p === 'function' ? p() : p, (e: unknown) => {
    assert.ok(e instanceof NsnetError, `expected an NsnetError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (operation instanceof RegExp) assert.match(e.message, operation);
    else if (operation !== undefined) {
      assert.ok(e instanceof NetlinkError, `expected a NetlinkError, got ${e.name}`);
      assert.equal(e.operation, operation);
      assert.ok(e.errno > 0);
    }
    return true;
  });
}
