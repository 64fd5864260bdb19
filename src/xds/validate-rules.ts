/**
 * Checks a generated xDS resource (the plain-object form `EnvoyProtos.encode` takes) against
 * Envoy's message types before it is published:
 *
 * - structure: keys that are not fields (protobufjs `fromObject` drops them silently), wrong JS
 *   value kinds, out-of-range integers, enum names that do not exist, several members of one
 *   oneof, and `google.protobuf.Any` values whose `@type` is not in the loaded API;
 * - protoc-gen-validate: the `(validate.rules)` field options, `(validate.required)` oneofs
 *   and the `(validate.disabled)` / `(validate.ignored)` message options, with PGV's semantics
 *   (singular scalars outside oneofs are checked even when absent, against their default).
 *
 * It descends into nested messages, repeated fields, maps, oneofs and Any values (the embedded
 * message is validated with its own rules, as Envoy does when it instantiates an extension).
 * Per-type rule sets are compiled once per validator instance.
 *
 * This module owns the walk (per-type compilation, messages, oneofs, Any); the rule compilers
 * live in `./pgv/` (field/element checks, numeric, string/bytes and RE2 rules, value kinds, options).
 */
import * as protobuf from 'protobufjs';
import { messageName, type EnvoyProtos } from './protos';
import * as common from './pgv/common';
import { Ctx, type Elem, type FieldCheck, type Obj, type RuleViolation } from './pgv/common';
import { ANY, enumElem, mapField, messageRules, repeatedField, scalarElem } from './pgv/fields';
import { boolOption, fieldRules } from './pgv/options';
import * as values from './pgv/values';

export type { RuleViolation } from './pgv/common';

// Per-call helpers bound once; see the note in ./pgv/common.ts on named imports under tsx.
const { describe, hasOwn, isObj, typeName, violation } = common;
const { isScalarKind, kindError, normScalar } = values;

interface OneofCheck {
  readonly name: string;
  readonly members: readonly string[];
  readonly required: boolean;
}

interface CompiledType {
  readonly name: string;
  readonly isAny: boolean;
  readonly disabled: boolean;
  readonly fields: ReadonlyMap<string, FieldCheck>;
  readonly absent: readonly FieldCheck[];
  readonly oneofs: readonly OneofCheck[];
}

const MAX_DEPTH = 100; // protobufjs' recursion limit
const MAX_CACHED_URLS = 10_000; // bounds the type-URL cache against endless distinct bad URLs
/** protobufjs toObject options for decoding raw `{type_url, value}` Any payloads. */
const RAW_ANY: protobuf.IConversionOptions = Object.freeze({
  enums: String,
  longs: String,
  bytes: String,
  json: true,
  defaults: false,
});

const present = (o: Obj, k: string): boolean => hasOwn(o, k) && o[k] !== null && o[k] !== undefined;
const join = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

// ---------------------------------------------------------------- the validator

const EXTENSION_CONFIG_TYPE = 'type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig';
/**
 * A WasmPlugin's remote code in ECDS never reaches Envoy as sent: istio-agent fetches the module
 * (oci/http, checked against sha256 when one is given) and hands Envoy a local file instead. So
 * the sha256 Envoy requires of remote code is optional there, as in Istio's API.
 */
const AGENT_REWRITTEN = /(^|\.)vm_config\.code\.remote\.sha256$/;

export class ResourceValidator {
  private readonly root: protobuf.Root;
  private readonly types = new Map<protobuf.Type, CompiledType>();
  private readonly typeUrls = new Map<string, protobuf.Type | null>();

  /** Accepts an `EnvoyProtos` (only its `root` is used, so any protobufjs Root wrapper works). */
  constructor(protos: Pick<EnvoyProtos, 'root'>) {
    this.root = protos.root;
  }

  /** Checks a plain object (the same form protos.encode takes) against the message type named by typeUrl. */
  validate(typeUrl: string, obj: object): RuleViolation[] {
    const t = this.resolveTypeUrl(typeUrl);
    if (!t) return [{ path: '', message: `unknown message type ${JSON.stringify(messageName(typeUrl))}` }];
    const ctx = new Ctx();
    const ct = this.compiled(t);
    const at = isObj(obj) ? obj['@type'] : undefined;
    if (!ct.isAny && typeof at === 'string' && this.resolveTypeUrl(at) === t) this.visitFields(ct, obj as Obj, '', ctx, '@type');
    else this.visitMessage(ct, obj, '', ctx);
    return typeUrl === EXTENSION_CONFIG_TYPE ? ctx.out.filter((v) => !AGENT_REWRITTEN.test(v.path)) : ctx.out;
  }

  private resolveTypeUrl(url: string): protobuf.Type | null {
    let t = this.typeUrls.get(url);
    if (t === undefined) {
      const name = url.slice(url.lastIndexOf('/') + 1);
      let found: protobuf.ReflectionObject | null;
      try {
        found = name === '' ? null : this.root.lookup(name);
      } catch {
        found = null;
      }
      t = found instanceof protobuf.Type ? found : null;
      if (t !== null || this.typeUrls.size < MAX_CACHED_URLS) this.typeUrls.set(url, t);
    }
    return t;
  }

  private compiled(t: protobuf.Type): CompiledType {
    const cached = this.types.get(t);
    if (cached) return cached;
    const fields = new Map<string, FieldCheck>();
    for (const f of t.fieldsArray) fields.set(f.name, this.compileField(f));
    const oneofs = t.oneofsArray
      .filter((o) => !o.fieldsArray.every((f) => f.options?.proto3_optional === true))
      .map((o) => ({ name: o.name, members: o.fieldsArray.map((f) => f.name), required: boolOption(o, '(validate.required)') }));
    const ct: CompiledType = {
      name: typeName(t),
      isAny: t.fullName === ANY,
      disabled: boolOption(t, '(validate.disabled)') || boolOption(t, '(validate.ignored)'),
      fields,
      absent: [...fields.values()].filter((f) => f.absent !== undefined),
      oneofs,
    };
    this.types.set(t, ct);
    return ct;
  }

  private compileField(f: protobuf.Field): FieldCheck {
    f.resolve();
    const rules = fieldRules(f);
    if (f instanceof protobuf.MapField) return mapField(f, rules, (r, prefix) => this.elem(f, r, prefix));
    if (f.repeated) return repeatedField(f, rules, (r, prefix) => this.elem(f, r, prefix));
    const e = this.elem(f, rules, '');
    const inOneof = f.partOf !== null && f.partOf !== undefined;
    return { name: f.name, visit: e.visit, absent: inOneof || f.options?.proto3_optional === true ? undefined : e.absent };
  }

  private elem(f: protobuf.FieldBase, rules: Obj | undefined, prefix: string): Elem {
    const rt = f.resolvedType;
    if (rt instanceof protobuf.Type) return this.messageElem(rt, rules, prefix);
    if (rt instanceof protobuf.Enum) return enumElem(rt, rules, prefix);
    if (isScalarKind(f.type)) return scalarElem(f.type, rules, prefix);
    throw new Error(`validate-rules: cannot resolve type ${f.type} of ${f.fullName}`);
  }

  private messageElem(t: protobuf.Type, rules: Obj | undefined, prefix: string): Elem {
    const { skip, required, post } = messageRules(t.fullName, rules, prefix);
    let ct: CompiledType | undefined;
    return {
      visit: (v, path, ctx) => {
        ct ??= this.compiled(t);
        if (skip && ctx.rules) {
          ctx.rules = false;
          this.visitMessage(ct, v, path, ctx);
          ctx.rules = true;
        } else {
          const before = ctx.out.length;
          // Type-specific rules (wrapper value, duration, any) only on a structurally sound value.
          if (this.visitMessage(ct, v, path, ctx) && post !== undefined && ctx.rules && ctx.out.length === before) {
            post(v as Obj, path, ctx.out);
          }
        }
      },
      absent: required === undefined ? undefined : (path, ctx) => violation(ctx.out, path, `${required}: value is required`),
      key: (v) => JSON.stringify(v) ?? '',
    };
  }

  /** Checks that v is an object and walks it; returns false if it is not an object. */
  private visitMessage(ct: CompiledType, v: unknown, path: string, ctx: Ctx): boolean {
    if (!isObj(v)) {
      violation(ctx.out, path, `expected an object (${ct.name}), got ${describe(v)}`);
      return false;
    }
    if (ctx.depth >= MAX_DEPTH) {
      violation(ctx.out, path, `message nesting deeper than ${MAX_DEPTH} levels`);
      return false;
    }
    ctx.depth++;
    if (ct.isAny) this.visitAny(v, path, ctx);
    else this.visitFields(ct, v, path, ctx, undefined);
    ctx.depth--;
    return true;
  }

  private visitFields(ct: CompiledType, o: Obj, path: string, ctx: Ctx, skipKey: string | undefined): void {
    const saved = ctx.rules;
    if (ct.disabled) ctx.rules = false;
    for (const key of Object.keys(o)) {
      if (key === skipKey) continue;
      const f = ct.fields.get(key);
      if (f === undefined) {
        violation(ctx.out, join(path, key), `unknown field ${JSON.stringify(key)}: not a field of ${ct.name}`);
        continue;
      }
      const v = o[key];
      if (v !== null && v !== undefined) f.visit(v, join(path, key), ctx);
    }
    if (ctx.rules) {
      for (const f of ct.absent) if (!present(o, f.name)) f.absent?.(join(path, f.name), ctx);
    }
    for (const oo of ct.oneofs) {
      const set = oo.members.filter((m) => present(o, m));
      if (set.length > 1) {
        violation(ctx.out, join(path, oo.name), `oneof ${oo.name}: at most one of ${oo.members.join(', ')} may be set, got ${set.join(', ')}`);
      } else if (set.length === 0 && oo.required && ctx.rules) {
        violation(ctx.out, join(path, oo.name), `oneof ${oo.name} (validate.required): exactly one of ${oo.members.join(', ')} must be set`);
      }
    }
    ctx.rules = saved;
  }

  private visitAny(o: Obj, path: string, ctx: Ctx): void {
    const saved = ctx.rules;
    const at = o['@type'];
    if (at !== undefined && at !== null) {
      if (typeof at !== 'string') {
        violation(ctx.out, join(path, '@type'), `expected a type URL string, got ${describe(at)}`);
        return;
      }
      const t = this.resolveTypeUrl(at);
      if (!t) {
        violation(ctx.out, path, `unresolvable @type ${JSON.stringify(at)}: no such message type in the loaded Envoy API`);
        return;
      }
      // Envoy validates an extension's config when it instantiates it, whatever its parent's rules.
      ctx.rules = true;
      this.visitFields(this.compiled(t), o, path, ctx, '@type');
      ctx.rules = saved;
      return;
    }
    for (const k of Object.keys(o)) {
      if (k !== 'type_url' && k !== 'value' && k !== '@type') violation(ctx.out, join(path, k), `unknown field ${JSON.stringify(k)}: google.protobuf.Any without "@type"`);
    }
    const url = o.type_url;
    if (url === undefined || url === null || url === '') {
      violation(ctx.out, path, 'google.protobuf.Any has no @type: write it as {"@type": "type.googleapis.com/…", ...fields}');
      return;
    }
    if (typeof url !== 'string') {
      violation(ctx.out, join(path, 'type_url'), `expected a type URL string, got ${describe(url)}`);
      return;
    }
    const t = this.resolveTypeUrl(url);
    if (!t) {
      violation(ctx.out, path, `unresolvable @type ${JSON.stringify(url)}: no such message type in the loaded Envoy API`);
      return;
    }
    const bytes = normScalar('bytes', o.value ?? new Uint8Array(0));
    if (!(bytes instanceof Uint8Array)) {
      violation(ctx.out, join(path, 'value'), kindError('bytes', o.value));
      return;
    }
    let decoded: Obj;
    try {
      decoded = t.toObject(t.decode(bytes), RAW_ANY);
    } catch (e) {
      violation(ctx.out, join(path, 'value'), `does not decode as ${typeName(t)}: ${(e as Error).message}`);
      return;
    }
    ctx.rules = true;
    this.visitFields(this.compiled(t), decoded, path, ctx, undefined);
    ctx.rules = saved;
  }
}
