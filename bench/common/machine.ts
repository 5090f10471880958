/** Facts about the machine the numbers were measured on, recorded with every suite's result. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { round, stats } from './measure';
import { PYTHON, ROOT } from './paths';
import { run } from './process';

/** Facts about the machine the numbers were measured on. */
export function machineFacts(): Record<string, unknown> {
  const cpus = os.cpus();
  const version = (cmd: string, args: string[]): string => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return r.status === 0 ? String(r.stdout).trim() : 'unavailable';
  };
  // What it costs this harness to run a process that does nothing: part of every
  // "whole process" time.
  const spawnMs: number[] = [];
  for (let i = 0; i < 11; i++) spawnMs.push(run('/bin/true', []).ms);
  return {
    date: new Date().toISOString(),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    cpu_count: cpus.length,
    cpu_model: cpus[0]?.model ?? 'unknown',
    memory_gb: round(os.totalmem() / 2 ** 30, 1),
    loadavg_1m: round(os.loadavg()[0] ?? 0, 2),
    iproute2: version('ip', ['-V']),
    pyroute2: version('dpkg-query', ['-W', '-f', '${Version}', 'python3-pyroute2']),
    python: version(PYTHON, ['-c', 'import sys; print(sys.version.split()[0])']),
    nsnet: (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
    spawn_true_median_ms: round(stats(spawnMs).median, 3),
  };
}
