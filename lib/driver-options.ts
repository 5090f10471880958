/**
 * Docker's way of giving a network driver its settings — `-o key=value`, and the
 * `com.docker.network.*` names — mapped onto NetworkSpec fields, for every entry point that
 * takes them: the CLI's `network create -o` and the Docker plugin's CreateNetwork options.
 */
import { NsnetError } from './errors';

/** `true`/`false` (also 1/0, yes/no). */
export function parseBool(value: string, what: string): boolean {
  const v = value.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new NsnetError('ERR_INVALID_ARGUMENT', `${what} must be true or false, not ${JSON.stringify(value)}`, { option: what, value });
}

/** A whole number (MTU, VNI): digits only. */
export function parseInteger(value: string, what: string, code = 'ERR_INVALID_ARGUMENT'): number {
  if (!/^\d{1,10}$/u.test(value)) throw new NsnetError(code, `${what} must be a whole number, not ${JSON.stringify(value)}`, { option: what, value });
  return Number(value);
}

/** `key=value` (the value may contain '='). */
export function keyValue(text: string, what: string): [string, string] {
  const i = text.indexOf('=');
  if (i <= 0) throw new NsnetError('ERR_INVALID_ARGUMENT', `${what} ${JSON.stringify(text)} is not key=value`, { value: text });
  return [text.slice(0, i), text.slice(i + 1)];
}

/** What a `-o` key sets. */
interface DriverOption {
  field: 'bridge' | 'parent' | 'mode' | 'ipvlanFlag' | 'vlanId' | 'vlanProtocol' | 'mtu' | 'icc' | 'ipMasquerade' | 'internal' | 'vni';
  parse: (value: string, key: string) => string | number | boolean;
}

const text = (v: string): string => v;
const bool = (v: string, k: string): boolean => parseBool(v, `-o ${k}`);

/**
 * The `-o key=value` driver options: the NetworkSpec field each sets, by nsnet's name and by the
 * name Docker uses for the same thing. Anything else is refused (ERR_INVALID_ARGUMENT).
 */
export const DRIVER_OPTIONS: Record<string, DriverOption> = {
  bridge: { field: 'bridge', parse: text },
  'com.docker.network.bridge.name': { field: 'bridge', parse: text },
  parent: { field: 'parent', parse: text },
  mode: { field: 'mode', parse: text },
  macvlan_mode: { field: 'mode', parse: text },
  ipvlan_mode: { field: 'mode', parse: text },
  ipvlan_flag: { field: 'ipvlanFlag', parse: text },
  'vlan-id': { field: 'vlanId', parse: (v, k) => parseInteger(v, `-o ${k}`) },
  'vlan-protocol': { field: 'vlanProtocol', parse: text },
  mtu: { field: 'mtu', parse: (v, k) => parseInteger(v, `-o ${k}`, 'ERR_INVALID_MTU') },
  'com.docker.network.driver.mtu': { field: 'mtu', parse: (v, k) => parseInteger(v, `-o ${k}`, 'ERR_INVALID_MTU') },
  icc: { field: 'icc', parse: bool },
  'com.docker.network.bridge.enable_icc': { field: 'icc', parse: bool },
  'ip-masquerade': { field: 'ipMasquerade', parse: bool },
  ipMasquerade: { field: 'ipMasquerade', parse: bool },
  'com.docker.network.bridge.enable_ip_masquerade': { field: 'ipMasquerade', parse: bool },
  internal: { field: 'internal', parse: bool },
  vni: { field: 'vni', parse: (v, k) => parseInteger(v, `-o ${k}`) },
};

/** The spec fields set by `-o` options; a field given twice (or by an option and a flag) is an error. */
export function parseDriverOptions(opts: string[], already: Partial<Record<string, unknown>> = {}): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const o of opts) {
    const [k, v] = keyValue(o, '-o');
    const def = Object.prototype.hasOwnProperty.call(DRIVER_OPTIONS, k) ? DRIVER_OPTIONS[k] : undefined;
    if (!def) {
      const known = [
        ...new Set(Object.keys(DRIVER_OPTIONS).filter((x) => !x.startsWith('com.') && x !== 'ipMasquerade' && x !== 'macvlan_mode' && x !== 'ipvlan_mode')),
      ];
      throw new NsnetError('ERR_INVALID_ARGUMENT', `unknown driver option ${JSON.stringify(k)} (known: ${known.join(', ')})`, { option: k });
    }
    if (def.field in out || already[def.field] !== undefined)
      throw new NsnetError('ERR_INVALID_ARGUMENT', `${def.field} is given twice (-o ${k})`, { option: k });
    out[def.field] = def.parse(v, k);
  }
  return out;
}
