/**
 * Reading deploy/: every YAML document under it, the objects `kubectl apply -k deploy/` installs,
 * and small typed accessors for the tests that check them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';

export const ROOT = path.join(__dirname, '..', '..');
export const DEPLOY = path.join(ROOT, 'deploy');

export type J = Record<string, unknown>;

export interface Doc {
  /** Path relative to deploy/, with forward slashes. */
  file: string;
  obj: J;
}

export function isRec(v: unknown): v is J {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function rec(v: unknown, what: string): J {
  assert.ok(isRec(v), `${what} must be a mapping (got ${JSON.stringify(v)})`);
  return v;
}

export function list(v: unknown, what: string): unknown[] {
  assert.ok(Array.isArray(v), `${what} must be a list (got ${JSON.stringify(v)})`);
  return v;
}

export function recs(v: unknown, what: string): J[] {
  return list(v, what).map((x, i) => rec(x, `${what}[${i}]`));
}

export function strs(v: unknown, what: string): string[] {
  return list(v, what).map((x, i) => {
    assert.equal(typeof x, 'string', `${what}[${i}] must be a string`);
    return x as string;
  });
}

/** Files below `dir` (recursively) whose name passes `keep`, relative to deploy/, sorted. */
export function filesUnder(dir: string, keep: (name: string) => boolean): string[] {
  const out: string[] = [];
  const visit = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) visit(p);
      else if (keep(e.name)) out.push(path.relative(DEPLOY, p).split(path.sep).join('/'));
    }
  };
  visit(dir);
  return out.sort();
}

export function readDeploy(rel: string): string {
  return fs.readFileSync(path.join(DEPLOY, rel), 'utf8');
}

/** Every non-empty YAML document of a file under deploy/; a syntax error fails the caller. */
export function documents(rel: string): Doc[] {
  const docs = parseAllDocuments(readDeploy(rel));
  const all = Array.isArray(docs) ? docs : [];
  const out: Doc[] = [];
  all.forEach((d, i) => {
    assert.deepEqual(
      d.errors.map((e) => e.message),
      [],
      `${rel} document ${i}: YAML errors`,
    );
    const v: unknown = d.toJS();
    if (v === null || v === undefined) return;
    out.push({ file: rel, obj: rec(v, `${rel} document ${i}`) });
  });
  return out;
}

export const yamlFiles = (): string[] => filesUnder(DEPLOY, (n) => /\.ya?ml$/.test(n));

/**
 * The files a kustomization under deploy/ lists (`dir` relative to deploy/, '' for deploy/
 * itself), with a listed folder replaced by the files its own kustomization lists: what
 * `kubectl apply -k` applies, before any component or patch.
 */
export function kustomizationResources(dir = ''): string[] {
  const rel = (p: string): string => path.posix.normalize(dir ? `${dir}/${p}` : p);
  const [k] = documents(rel('kustomization.yaml'));
  assert.ok(k, `deploy/${rel('kustomization.yaml')} has no document`);
  return strs(k.obj['resources'], 'kustomization resources').flatMap((r) => (fs.statSync(path.join(DEPLOY, rel(r))).isDirectory() ? kustomizationResources(rel(r)) : [rel(r)]));
}

/** Whether `kubectl kustomize` (kustomize v5 inside kubectl) can run here. */
export function haveKustomize(): boolean {
  return spawnSync('kubectl', ['kustomize', '--help'], { encoding: 'utf8', timeout: 30_000 }).status === 0;
}

/** `kubectl kustomize <dir>` (an absolute path, or relative to deploy/): the objects it renders. */
export function kustomize(dir: string): Doc[] {
  const abs = path.isAbsolute(dir) ? dir : path.join(DEPLOY, dir);
  const r = spawnSync('kubectl', ['kustomize', abs], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `kubectl kustomize ${dir}: ${r.stderr || String(r.error)}`);
  return parseAllDocuments(r.stdout)
    .map((d, i) => {
      assert.deepEqual(
        d.errors.map((e) => e.message),
        [],
        `kubectl kustomize ${dir} document ${i}`,
      );
      return d.toJS() as unknown;
    })
    .filter((v) => v !== null && v !== undefined)
    .map((v, i) => ({ file: `kustomize ${dir} #${i}`, obj: rec(v, `kubectl kustomize ${dir} document ${i}`) }));
}

/** The objects the install applies, from the files the kustomization lists. */
export function installed(): Doc[] {
  return kustomizationResources().flatMap((f) => documents(f));
}

export function meta(o: J): { name: string; namespace: string | undefined } {
  const m = rec(o['metadata'], 'metadata');
  return { name: String(m['name']), namespace: typeof m['namespace'] === 'string' ? m['namespace'] : undefined };
}

/** The one installed object of this kind and name (and namespace, when given). */
export function one(objs: Doc[], kind: string, name: string, namespace?: string): J {
  const hits = objs.filter((d) => d.obj['kind'] === kind && meta(d.obj).name === name && (namespace === undefined || meta(d.obj).namespace === namespace));
  assert.equal(hits.length, 1, `want exactly one ${kind} ${namespace ? `${namespace}/` : ''}${name}, found ${hits.length}`);
  return (hits[0] as Doc).obj;
}

export function ofKind(objs: Doc[], kind: string): J[] {
  return objs.filter((d) => d.obj['kind'] === kind).map((d) => d.obj);
}

/** `obj.a.b.c` with each step checked to be a mapping. */
export function at(obj: J, dotted: string): unknown {
  let cur: unknown = obj;
  for (const k of dotted.split('.')) cur = rec(cur, dotted)[k];
  return cur;
}

/** The Deployment's meshd container (Deployment `istiod`, or `istiod-<rev>` for a revision). */
export function meshdContainer(objs: Doc[], deployment = 'istiod'): J {
  const dep = one(objs, 'Deployment', deployment, 'istio-system');
  const containers = recs(at(dep, 'spec.template.spec.containers'), 'containers');
  const c = containers.find((x) => x['name'] === 'discovery');
  assert.ok(c, `Deployment ${deployment} has no container named discovery`);
  return c;
}

/** `--flag value` pairs of a container's args (a bare `--flag` maps to ''). */
export function flagValues(args: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (!a.startsWith('--')) continue;
    const eq = a.indexOf('=');
    if (eq > 0) out.set(a.slice(0, eq), a.slice(eq + 1));
    else if (i + 1 < args.length && !(args[i + 1] as string).startsWith('--')) out.set(a, args[++i] as string);
    else out.set(a, '');
  }
  return out;
}
