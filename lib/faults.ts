/**
 * Fault injection for crash tests: with NSNET_FAULT=<point> in the environment, the process
 * kills itself with SIGKILL when it reaches that point, as a crash or `kill -9` would. Points
 * are named `<operation>:<step>` ('connect:attached'). Never set in production.
 * @internal
 */
export function faultPoint(point: string): void {
  if (process.env.NSNET_FAULT === point) process.kill(process.pid, 'SIGKILL');
}
