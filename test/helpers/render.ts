/** Generates, checks and encodes a proxy's resources without a server, as the server would. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildSnapshot } from '../../src/model/build';
import { type JwksEntry, parseJwks } from '../../src/model/jwks';
import { parseProxy, type ProxyMetadata } from '../../src/model/proxy';
import type { MeshSnapshot } from '../../src/model/snapshot';
import { FileSource } from '../../src/sources/file-source';
import type { RejectedResource } from '../../src/xds/cache';
import { ConfigEngine } from '../../src/xds/engine';
import { type EnvoyProtos, PUSH_ORDER, SHORT_TYPE } from '../../src/xds/protos';
import { ResourceValidator } from '../../src/xds/validate-rules';

/**
 * `jwks`: what the JWKS resolver would have fetched, as source key → file (relative to `root`)
 * holding the JWKS document.
 */
export function snapshotFromDir(dir: string, jwks?: Record<string, string>, root = '', meshFile?: string): MeshSnapshot {
  const src = new FileSource(dir);
  src.load();
  const st = src.state();
  // `meshFile` (relative to `root`) replaces the folder's mesh.yaml, as --mesh-config does.
  const mesh = meshFile ? { source: meshFile, text: fs.readFileSync(path.join(root, meshFile), 'utf8') } : st.mesh;
  return buildSnapshot({
    objects: st.objects,
    errors: st.errors,
    sequence: 1,
    now: new Date(0),
    domain: 'cluster.local',
    ...(mesh ? { mesh } : {}),
    ...(jwks ? { jwks: jwksFromFiles(jwks, root) } : {}),
  });
}

/** Source key → JWKS file, read and checked as the resolver checks what it fetches. */
export function jwksFromFiles(files: Record<string, string>, root: string): Map<string, JwksEntry> {
  const out = new Map<string, JwksEntry>();
  for (const [key, file] of Object.entries(files)) {
    const r = parseJwks(fs.readFileSync(path.join(root, file), 'utf8'));
    if ('error' in r) throw new Error(`${file}: ${r.error}`);
    out.set(key, { keys: r.json });
  }
  return out;
}

export interface Rendered {
  /** Short type (CDS, EDS, LDS, RDS) → decoded resources, as the proxy would receive them. */
  byType: Record<string, Record<string, unknown>[]>;
  rejected: RejectedResource[];
}

/** `names`: per short type (`LDS`, …), the resource names a proxy subscribes to; others are wildcard. */
export function render(protos: EnvoyProtos, snap: MeshSnapshot, id: string, metadata: ProxyMetadata, names: Record<string, string[]> = {}, engine?: ConfigEngine): Rendered {
  const proxy = parseProxy(id, metadata);
  const e = engine ?? new ConfigEngine({ protos, checker: new ResourceValidator(protos) });
  e.setSnapshot(snap);
  const h = e.attach(proxy);
  const byType: Record<string, Record<string, unknown>[]> = {};
  for (const t of PUSH_ORDER) {
    if (!e.serves(h, t)) continue;
    const wanted = names[SHORT_TYPE[t]];
    // Sidecars are served SDS only for the ConfigMap CA bundles they name; render it when a case names some.
    if (SHORT_TYPE[t] === 'SDS' && proxy.type !== 'router' && !wanted) continue;
    const set = wanted ? new Set(wanted) : undefined;
    const all = e.resources(h, t, set).resources;
    const enc = set ? [...all.values()].filter((r) => set.has(r.name)) : [...all.values()];
    byType[SHORT_TYPE[t]] = enc.map((r) => protos.decode(t, r.bytes));
  }
  return { byType, rejected: e.currentRejections() };
}
