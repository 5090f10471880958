/** objref: use a named stateful object (counter, quota, limit, ...), by name or through a map. */
import { attrs, fail, fields, int, name, needReg, needString, OpenEnum, reg, type ExprCodec, type Register } from './kit';

/** NFT_OBJECT_* types by name. */
export const OBJECT_TYPES = {
  counter: 1,
  quota: 2,
  ct_helper: 3,
  limit: 4,
  connlimit: 5,
  tunnel: 6,
  ct_timeout: 7,
  secmark: 8,
  ct_expect: 9,
  synproxy: 10,
} as const;

/** A stateful object type; a number for types newer than this table. */
export type ObjectType = keyof typeof OBJECT_TYPES;

/** The object `name` of type `objType` (`counter name "c1"`). */
export interface ObjrefNamedExpr {
  type: 'objref';
  objType: ObjectType | number;
  name: string;
}

/** The object an object map `set` yields for the key in `sreg` (`counter name ip saddr map @m`). */
export interface ObjrefMapExpr {
  type: 'objref';
  set: string;
  sreg: Register;
  /** NFTA_OBJREF_SET_ID: a map added earlier in the same transaction. */
  setId?: number;
}

/** A reference to a named object, direct or through a map. */
export type ObjrefExpr = ObjrefNamedExpr | ObjrefMapExpr;

const TYPE = new OpenEnum<ObjectType>(OBJECT_TYPES);

/** The `objref` expression's codec (registered in ./registry). */
export const objref: ExprCodec<ObjrefExpr> = {
  type: 'objref',
  kernelName: 'objref',
  encode(e) {
    const f = fields(e, 'objref', ['objType', 'name', 'set', 'sreg', 'setId']);
    if ((f.name === undefined) === (f.set === undefined)) throw fail('objref', 'needs exactly one of name (with objType) and set (with sreg)');
    if (f.name !== undefined) {
      if (f.sreg !== undefined || f.setId !== undefined) throw fail('objref', 'a named reference takes no sreg or setId');
      return { immType: TYPE.encode(f.objType, 'objref.objType'), immName: name(f.name, 'objref.name') };
    }
    if (f.objType !== undefined) throw fail('objref', 'a map reference takes no objType (the map has it)');
    return attrs({
      setSreg: reg(f.sreg, 'objref.sreg'),
      setName: name(f.set, 'objref.set'),
      setId: f.setId === undefined ? undefined : int(f.setId, 'objref.setId'),
    });
  },
  decode(d) {
    if (typeof d.immName === 'string') return { type: 'objref', objType: TYPE.decode(d.immType, 'objref.objType'), name: d.immName };
    const out: ObjrefMapExpr = { type: 'objref', set: needString(d, 'setName', 'objref'), sreg: needReg(d, 'setSreg', 'objref') };
    if (typeof d.setId === 'number') out.setId = d.setId;
    return out;
  },
};
