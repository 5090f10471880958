/** Assertions shared by the kernel tests. */
import * as assert from 'node:assert/strict';
import { NetlinkError, NsnetError } from '../../lib/index';

export /** Asserts that a promise rejects with an NsnetError of this code (and, for kernel errors, this operation). */
async function rejectsWith(p: Promise<unknown>, code: string, operation?: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof NsnetError, `expected an NsnetError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (operation !== undefined) {
      assert.ok(e instanceof NetlinkError, `expected a NetlinkError, got ${e.name}`);
      assert.equal(e.operation, operation);
      assert.ok(e.errno > 0);
    }
    return true;
  });
}
