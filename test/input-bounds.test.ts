/**
 * Bounded input ("nothing crashes"): each defect once found by fuzzing a running meshd, at the
 * reader, validator, model and CLI level. The same shapes against a running meshd and real
 * clients are in input-bounds-meshd.test.ts; the seeded fuzzer is chaos.test.ts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { DEFAULT_INPUT_LIMITS, inputLimits } from '../src/config/limits';
import { buildSnapshot } from '../src/model/build';
import type { ConfigError, ConfigObject } from '../src/model/objects';
import { validateObject } from '../src/model/validate';
import { checkTree, sharedCost } from '../src/sources/bounds';
import { KUBE_KINDS, toConfigObject } from '../src/sources/kube-kinds';
import { loadText } from '../src/sources/load';
import { parseDocuments, parseDocumentsAsync, parseObject } from '../src/sources/parse';
import { scanYaml } from '../src/sources/yaml-scan';
import { EnvoyProtos } from '../src/xds/protos';
import { Fuzzer, SHAPES } from './helpers/fuzz';
import { startKubeApiServer } from './helpers/kube-api-server';
import { kubeSource } from './helpers/kube-testing';
import { render } from './helpers/render';

const ROOT = path.join(__dirname, '..');
const MAIN = path.join(ROOT, 'src', 'main.ts');

function shape(name: string): string {
  const s = SHAPES.find((x) => x.name === name);
  assert.ok(s, name);
  return s.text();
}

function messages(errors: readonly ConfigError[]): string {
  return errors.flatMap((e) => e.errors.map((f) => `${f.path}: ${f.message}`)).join('\n');
}

function kubeKind(kind: string): (typeof KUBE_KINDS)[number] {
  const k = KUBE_KINDS.find((x) => x.kind === kind);
  assert.ok(k, kind);
  return k;
}

// ---- one host 3,000 times ----

test('defect: a VirtualService listing one host 3,000 times gets 100 errors and "and at least N more", not 4.5 million', () => {
  const r = loadText(shape('one-host-3000-times.json'), 'dup.json');
  assert.equal(r.objects.length, 0);
  assert.equal(r.errors.length, 1);
  const e = r.errors[0] as ConfigError;
  assert.equal(e.kind, 'VirtualService');
  assert.equal(e.errors.length, DEFAULT_INPUT_LIMITS.maxErrorsPerObject + 1);
  assert.match(e.errors[0]?.message ?? '', /^duplicate hosts in virtual service: /);
  assert.equal(e.errors[0]?.path, 'spec.hosts[1]');
  assert.match(e.errors[100]?.message ?? '', /^and at least \d+ more errors? \(only the first 100 are kept\)$/);
});

test('the error limit is an option, and counts what it leaves out', () => {
  const bad = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`bad${i}`, 1]));
  const dr: ConfigObject = {
    kind: 'DestinationRule',
    apiVersion: 'networking.istio.io/v1',
    metadata: { name: 'd', namespace: 'default', labels: {}, annotations: {} },
    body: { spec: { host: 'r', ...bad } },
    origin: { source: 't' },
  };
  assert.equal(validateObject(dr, 1000).length, 40, 'forty unknown fields');
  const cut = validateObject(dr, 10);
  assert.equal(cut.length, 11);
  assert.equal(cut[10]?.message, 'and 30 more errors (only the first 10 are kept)');
  const r = loadText(
    JSON.stringify({ apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'd' }, spec: dr.body['spec'] }),
    'd.json',
    inputLimits({ maxErrorsPerObject: 5 }),
  );
  assert.equal(r.errors[0]?.errors.length, 6);
  assert.equal(r.errors[0]?.errors[5]?.message, 'and 35 more errors (only the first 5 are kept)');
});

test('messages, paths, names and sources are cut at the message limit', () => {
  const r = loadText(shape('megabyte-key-and-name.json'), 'big.json');
  assert.equal(r.objects.length, 0);
  const e = r.errors[0] as ConfigError;
  assert.ok((e.name ?? '').length <= DEFAULT_INPUT_LIMITS.maxMessageLength, `name ${e.name?.length}`);
  assert.match(e.name ?? '', /… \(\d+ more characters\)$/);
  for (const f of e.errors) {
    assert.ok(f.path.length <= DEFAULT_INPUT_LIMITS.maxMessageLength && f.message.length <= DEFAULT_INPUT_LIMITS.maxMessageLength, `${f.path.length} / ${f.message.length}`);
  }
  assert.match(messages(r.errors), /unknown field "kkkk/);
});

// ---- nesting ----

test('defect: a 10 MB DestinationRule of 1,001 subsets nested 5,000 deep is refused unread, naming its line', () => {
  const text = shape('destinationrule-5000-deep.json');
  assert.ok(text.length > 10_000_000 && text.length < DEFAULT_INPUT_LIMITS.maxFileBytes);
  const r = parseDocuments(text, 'deep.json');
  assert.deepEqual(r.objects, []);
  assert.equal(r.errors.length, 1);
  assert.equal(r.errors[0]?.document, 0);
  assert.match(messages(r.errors), /^: nested deeper than 64 levels of mappings and lists at line 1; the document is refused unread \(--max-depth\)$/);
});

test('defect: arrays nested 850 deep (3.5 KB) are a depth error for their document; the next document still reads', () => {
  const text = `${shape('arrays-850-deep.json')}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: fine}\n`;
  for (const careful of [false, true]) {
    const r = parseDocuments(text, 'deep.yaml', { careful });
    assert.deepEqual(
      r.objects.map((o) => o.metadata.name),
      ['fine'],
    );
    assert.equal(r.errors[0]?.document, 0);
    assert.match(messages(r.errors), /nested deeper than 64 levels/);
  }
});

test('a document the scan cannot clear is measured exactly: the error names the field path where it gets too deep', () => {
  // 70 levels of block mappings: past the limit, well within what the readers can take.
  let yaml = 'apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n';
  for (let i = 0; i < 70; i++) yaml += `${'  '.repeat(i + 1)}a${i}:\n`;
  yaml += `${'  '.repeat(71)}x: 1\n`;
  const r = parseDocuments(yaml, 's.yaml');
  assert.equal(r.objects.length, 0);
  const e = r.errors[0] as ConfigError;
  assert.equal(e.kind, 'Service');
  assert.equal(e.name, 's');
  // The object is level 1, spec 2, a0 3 … a62 is the 65th.
  assert.match(e.errors[0]?.path ?? '', /^spec\.a0\.a1\.a2\..*\.a61\.a62$/);
  assert.match(e.errors[0]?.message ?? '', /nested deeper than 64 levels/);
  // 60 levels is fine, and the limit is an option.
  let ok = 'apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n';
  for (let i = 0; i < 58; i++) ok += `${'  '.repeat(i + 1)}a${i}:\n`;
  ok += `${'  '.repeat(59)}x: 1\n`;
  assert.deepEqual(parseDocuments(ok, 'ok.yaml').errors, []);
  assert.match(messages(parseDocuments(ok, 'ok.yaml', { limits: inputLimits({ maxDepth: 32 }) }).errors), /nested deeper than 32 levels/);
});

test('defect: objects from the API server are checked for depth and __proto__ before anything recurses over them', () => {
  // JSON.parse reads any depth; the source's fingerprint (JSON.stringify) used to overflow.
  const deep = JSON.parse(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"d","namespace":"x"},"spec":{"ports":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`) as Record<
    string,
    unknown
  >;
  const r = toConfigObject(kubeKind('Service'), 'v1', deep);
  assert.equal(r.object, undefined);
  assert.match(messages(r.errors), /^spec\.ports(\[0\])+: nested deeper than 64 levels/);
  assert.equal(r.errors[0]?.name, 'd');
  const proto = JSON.parse(shape('routes-under-proto.json')) as Record<string, unknown>;
  const p = toConfigObject(kubeKind('VirtualService'), 'v1', proto);
  assert.equal(p.object, undefined);
  assert.match(messages(p.errors), /^spec\.__proto__: the key "__proto__" is not allowed$/m);
  // The same refusal twice is the same result (no change event).
  assert.equal(toConfigObject(kubeKind('VirtualService'), 'v1', proto).fingerprint, p.fingerprint);
});

test('defect: meshd validate on arrays nested 850 deep and on the 10 MB DestinationRule exits 1 with depth errors', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-bounds-'));
  try {
    fs.writeFileSync(path.join(dir, 'arrays.json'), shape('arrays-850-deep.json'));
    fs.writeFileSync(path.join(dir, 'dr.json'), shape('destinationrule-5000-deep.json'));
    const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'validate', dir], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /arrays\.json: document 0: nested deeper than 64 levels of mappings and lists at line 1/);
    assert.match(r.stdout, /dr\.json: document 0: nested deeper than 64 levels of mappings and lists at line 1/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---- prototype keys ----

test('defect: routes under spec.__proto__ are refused with the field path, from YAML and from JSON', () => {
  const yaml =
    'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: p, namespace: shop}\nspec:\n  __proto__:\n    hosts: [reviews]\n    http:\n    - route:\n      - destination: {host: evil}\n';
  for (const [text, careful] of [
    [yaml, false],
    [yaml, true],
    [shape('routes-under-proto.json'), false],
    [shape('routes-under-proto.json'), true],
  ] as const) {
    const r = parseDocuments(text, 'p.yaml', { careful });
    assert.deepEqual(r.objects, [], 'nothing is served');
    const e = r.errors[0] as ConfigError;
    assert.equal(e.kind, 'VirtualService');
    assert.match(messages(r.errors), /^spec\.__proto__: the key "__proto__" is not allowed$/m, `careful ${careful}`);
  }
  // Anywhere, including inside lists and label maps.
  const labels = parseObject(JSON.parse('{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"__proto__":"x"}}}'), 'api');
  assert.match(messages(labels.errors), /^metadata\.labels\.__proto__: the key "__proto__" is not allowed$/);
  const deepList = parseObject(JSON.parse('{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"ports":[{"__proto__":{"port":1}}]}}'), 'api');
  assert.match(messages(deepList.errors), /^spec\.ports\[0\]\.__proto__: /);
});

test('defect: constructor, toString and prototype are unknown fields of Istio kinds, and fine as label keys', () => {
  const r = loadText(shape('unknown-prototype-fields.yaml'), 'u.yaml');
  assert.equal(r.objects.length, 0);
  const m = messages(r.errors);
  assert.match(m, /^spec\.constructor: unknown field "constructor"$/m);
  assert.match(m, /^spec\.toString: unknown field "toString"$/m);
  const http = loadText(
    'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: r\n  trafficPolicy: {prototype: 1, hasOwnProperty: 2}\n',
    'd.yaml',
  );
  assert.match(messages(http.errors), /spec\.trafficPolicy\.prototype: unknown field "prototype"/);
  assert.match(messages(http.errors), /spec\.trafficPolicy\.hasOwnProperty: unknown field "hasOwnProperty"/);
  const pod = loadText('apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {constructor: a, toString: b}}\n', 'p.yaml');
  assert.deepEqual(pod.errors, []);
  assert.deepEqual(pod.objects[0]?.metadata.labels, { constructor: 'a', toString: 'b' });
});

// ---- endpoints ----

test('defect: one address in two EndpointSlices of a Service is sent once in its ClusterLoadAssignment', () => {
  const yaml = `apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  ports: [{name: grpc, port: 9080}]
---
${shape('one-address-two-slices.yaml')
  .replace(/fuzz-svc-3/g, 'reviews')
  .replace(/namespace: fuzz/g, 'namespace: default')}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: third, namespace: default, labels: {kubernetes.io/service-name: reviews}}
addressType: IPv4
ports: [{name: grpc, port: 9080}]
endpoints:
- addresses: [10.79.0.2, 10.79.0.1]
  conditions: {ready: false}
- addresses: [10.79.0.2]
  conditions: {ready: true}
`;
  const r = loadText(yaml, 'eds.yaml');
  assert.deepEqual(r.errors, []);
  const snap = buildSnapshot({ objects: r.objects, errors: r.errors, sequence: 1, now: new Date(0), domain: 'cluster.local' });
  const eps = snap.endpoints.get('reviews.default.svc.cluster.local')?.get(9080) ?? [];
  assert.deepEqual(
    eps.map((e) => `${e.address}:${e.port}:${e.ready}`),
    ['10.79.0.1:9080:true', '10.79.0.2:9080:true'],
    'one endpoint per address, a ready copy winning',
  );
  const out = render(new EnvoyProtos(), snap, 'sidecar~10.0.0.9~client.default~default.svc.cluster.local', { NAMESPACE: 'default', GENERATOR: 'grpc' });
  const cla = (out.byType['EDS'] ?? []).find((c) => c['cluster_name'] === 'outbound|9080||reviews.default.svc.cluster.local');
  assert.ok(cla, 'the ClusterLoadAssignment is served');
  type Lb = { endpoint: { address: { socket_address: { address: string; port_value: number } } } };
  const addresses = ((cla['endpoints'] ?? []) as Array<{ lb_endpoints: Lb[] }>).flatMap((l) =>
    l.lb_endpoints.map((e) => `${e.endpoint.address.socket_address.address}:${e.endpoint.address.socket_address.port_value}`),
  );
  assert.deepEqual(addresses.sort(), ['10.79.0.1:9080', '10.79.0.2:9080']);
  assert.equal(new Set(addresses).size, addresses.length, 'no address repeats');
});

// ---- size, documents, aliases ----

test('defect: a file over the size limit, or with more documents than the limit, is refused with a clear error', async () => {
  const huge = parseDocuments(shape('fifty-megabytes.yaml'), 'huge.yaml');
  assert.deepEqual(huge.objects, []);
  assert.match(messages(huge.errors), /^: the file is 52428\d\d\d bytes, more than the limit of 16777216; it is refused unread \(--max-file-bytes\)$/);
  assert.equal(huge.errors[0]?.document, undefined);
  const flood = await parseDocumentsAsync(shape('100000-documents.yaml'), 'flood.yaml');
  assert.deepEqual(flood.objects, []);
  assert.match(messages(flood.errors), /^: the file holds 100000 documents, more than the limit of 10000; it is refused \(--max-documents-per-file\)$/);
  // List items count as documents.
  const items = Array.from({ length: 12 }, (_, i) => `- {apiVersion: v1, kind: Namespace, metadata: {name: n${i}}}`).join('\n');
  const list = parseDocuments(`apiVersion: v1\nkind: List\nitems:\n${items}\n`, 'list.yaml', { limits: inputLimits({ maxDocumentsPerFile: 10 }) });
  assert.deepEqual(list.objects, []);
  assert.match(messages(list.errors), /more than 10 documents \(List items count one each\)/);
  assert.equal(parseDocuments(`apiVersion: v1\nkind: List\nitems:\n${items}\n`, 'list.yaml', { limits: inputLimits({ maxDocumentsPerFile: 12 }) }).objects.length, 12);
});

test('defect: an alias-heavy file and an alias bomb are refused before anything is copied; merge keys still work', () => {
  const heavy = parseDocuments(shape('alias-heavy.yaml'), 'heavy.yaml');
  assert.deepEqual(heavy.objects, []);
  assert.match(messages(heavy.errors), /YAML aliases expand to \d+ more nodes, past what is left of the file's limit of 10000; the document is refused \(--max-alias-nodes\)/);
  assert.equal(heavy.errors[0]?.name, 'alias-0', 'the refused object is named');
  const bomb = parseDocuments(shape('alias-bomb.yaml'), 'bomb.yaml');
  assert.deepEqual(bomb.objects, []);
  assert.match(messages(bomb.errors), /YAML aliases expand to \d+ more nodes/);
  // A cycle (an alias inside its own anchor) is refused, not walked forever.
  assert.match(messages(parseDocuments('apiVersion: v1\nkind: Namespace\nmetadata: &m\n  name: c\n  labels: {a: b}\n  self: [*m]\n', 'c.yaml').errors), /cycle/);
  // Merge keys over many objects are what the limit is for.
  const merged = Array.from(
    { length: 200 },
    (_, i) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n${i}\n  labels: &l${i} {team: a, tier: b, env: c}\n  annotations: {<<: *l${i}, extra: x}\n`,
  ).join('---\n');
  const ok = parseDocuments(merged, 'merged.yaml');
  assert.deepEqual(ok.errors, []);
  assert.deepEqual(ok.objects[199]?.metadata.annotations, { team: 'a', tier: 'b', env: 'c', extra: 'x' });
  assert.equal(sharedCost(JSON.parse('{"a":[1,2]}')).added, 0);
});

test('limits are checked options with sensible defaults', () => {
  assert.deepEqual(inputLimits(), DEFAULT_INPUT_LIMITS);
  assert.equal(inputLimits({ maxDepth: 100 }).maxDepth, 100);
  assert.throws(() => inputLimits({ maxDepth: 5000 }), /--max-depth: 5000 must be an integer from 8 to 200/);
  assert.throws(() => inputLimits({ maxFileBytes: 1.5 }), /--max-file-bytes/);
  assert.deepEqual(checkTree({ a: [{ b: 1 }] }, DEFAULT_INPUT_LIMITS), []);
});

// ---- the scan and the readers agree ----

test('the scan cuts documents where the readers do and never estimates below the real depth (examples and 400 fuzzed files)', () => {
  const texts: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ya?ml|json)$/.test(e.name)) texts.push(fs.readFileSync(p, 'utf8'));
    }
  };
  walk(path.join(ROOT, 'examples'));
  walk(path.join(ROOT, 'deploy'));
  walk(path.join(ROOT, 'test', 'golden'));
  const f = new Fuzzer(7);
  for (let i = 0; i < 400; i++) texts.push(f.fileWithObjects(1 + (i % 4)).text);
  let compared = 0;
  for (const text of texts) {
    if (text.length > 2_000_000) continue;
    // Batches of one document each, and the default: the same objects and errors.
    const small = parseDocuments(text, 'x.yaml', { batchChars: 1 });
    const fast = parseDocuments(text, 'x.yaml');
    assert.deepEqual(small, fast, text.slice(0, 200));
    compared++;
    // Where the readers take a document, its real depth is within the scan's estimate.
    const scan = scanYaml(text);
    for (const s of scan.segments) {
      if (s.depth > 200) continue;
      const docs = parseDocuments(text.slice(s.start, s.end), 'seg.yaml', { limits: inputLimits({ maxDepth: 200 }) });
      for (const o of docs.objects) {
        const depth = realDepth(o.body);
        assert.ok(depth <= s.depth, `real depth ${depth} > estimate ${s.depth} in:\n${text.slice(s.start, Math.min(s.end, s.start + 400))}`);
      }
    }
  }
  assert.ok(compared > 400, `compared ${compared}`);
});

function realDepth(v: unknown): number {
  if (typeof v !== 'object' || v === null) return 0;
  const kids = Array.isArray(v) ? v : Object.values(v);
  return 1 + Math.max(0, ...kids.map(realDepth));
}

test('defect: through the Kubernetes list/watch protocol, __proto__ keys and 2,000-deep nesting are refused and the rest is served', { timeout: 30_000 }, async (t) => {
  const api = await startKubeApiServer();
  const s = kubeSource(api, { kinds: KUBE_KINDS.filter((k) => ['Service', 'VirtualService'].includes(k.kind)) });
  t.after(async () => {
    await s.src.close();
    await api.close();
  });
  // As the API server stores them: JSON, with `__proto__` an own key and deep nesting (the fake
  // server itself stringifies objects, so this stays within what its JSON.stringify takes).
  api.store.create(JSON.parse(shape('routes-under-proto.json').replace(/"fuzz"/g, '"shop"')) as object);
  api.store.create(
    JSON.parse(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"deep","namespace":"shop"},"spec":{"ports":${'['.repeat(2000)}${']'.repeat(2000)}}}`) as object,
  );
  api.store.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'fine', namespace: 'shop' }, spec: { ports: [{ name: 'http', port: 80 }] } });
  await s.src.load();
  const st = s.src.state();
  assert.deepEqual(
    st.objects.map((o) => `${o.kind}/${o.metadata.name}`),
    ['Service/fine'],
  );
  const m = messages(st.errors);
  assert.match(m, /^spec\.__proto__: the key "__proto__" is not allowed$/m);
  assert.match(m, /^spec\.ports(\[0\])+: nested deeper than 64 levels/m);
  assert.deepEqual(st.errors.map((e) => e.source).sort(), ['kubernetes:Service/shop/deep', 'kubernetes:VirtualService/shop/proto']);
});
