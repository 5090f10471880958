/**
 * native.threadCpuMs(): the event loop thread's CPU time, which the connect benchmark reports
 * per operation. It must count this thread's work and not its waiting.
 */
import * as assert from 'node:assert/strict';
import { native } from '../../lib/native';

describe('native.threadCpuMs', () => {
  it("counts the thread's own work (a 60 ms busy loop) and not its waiting (a 60 ms sleep)", async () => {
    const spin = (ms: number): void => {
      const end = performance.now() + ms;
      while (performance.now() < end) {
        /* busy */
      }
    };
    const c0 = native.threadCpuMs();
    spin(60);
    const busy = native.threadCpuMs() - c0;
    const c1 = native.threadCpuMs();
    await new Promise((r) => setTimeout(r, 60));
    const idle = native.threadCpuMs() - c1;
    // (Busy: at most 60 ms, less only when the machine took the CPU away meanwhile.)
    assert.ok(busy > 20 && busy <= 61, `busy loop of 60 ms counted ${busy.toFixed(2)} ms`);
    assert.ok(idle < 15, `a 60 ms sleep counted ${idle.toFixed(2)} ms`);
    assert.ok(native.threadCpuMs() >= c1 + idle, 'never goes back');
  });
});
