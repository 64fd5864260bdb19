import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseDocuments } from '../src/sources/parse';
import type { ConfigError } from '../src/model/objects';

function onlyError(errors: ConfigError[]): ConfigError {
  assert.equal(errors.length, 1, `expected one ConfigError, got ${JSON.stringify(errors)}`);
  return errors[0] as ConfigError;
}

const SERVICE = `apiVersion: v1
kind: Service
metadata:
  name: details
spec:
  ports:
  - port: 9080
    name: http
`;

test('multi-document YAML yields one object per document, with document indexes', () => {
  const text = `${SERVICE}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details, namespace: shop}
spec: {hosts: [details]}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
`;
  const r = parseDocuments(text, 'app.yaml');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(
    r.objects.map((o) => [o.kind, o.apiVersion, o.metadata.namespace, o.metadata.name, o.origin]),
    [
      ['Service', 'v1', 'default', 'details', { source: 'app.yaml', document: 0 }],
      ['VirtualService', 'networking.istio.io/v1', 'shop', 'details', { source: 'app.yaml', document: 1 }],
      ['Namespace', 'v1', '', 'shop', { source: 'app.yaml', document: 2 }],
    ],
  );
});

test('empty and comment-only documents are skipped but still count for document indexes', () => {
  // a leading `---` opens document 0; the two empty documents before the Service are 0 and 1
  const r = parseDocuments(`---\n---\n# nothing here\n---\n${SERVICE}`, 'f.yaml');
  assert.deepEqual(r.errors, []);
  assert.equal(r.objects.length, 1);
  assert.equal(r.objects[0]?.origin.document, 2);
  const between = parseDocuments(`${SERVICE}---\n---\n${SERVICE.replace('details', 'ratings')}`, 'f.yaml');
  assert.deepEqual(
    between.objects.map((o) => o.origin.document),
    [0, 2],
  );
  assert.deepEqual(parseDocuments('', 'empty.yaml'), { objects: [], errors: [] });
  assert.deepEqual(parseDocuments('# just a comment\n', 'c.yaml'), { objects: [], errors: [] });
});

test('a JSON object is read like YAML', () => {
  const r = parseDocuments('{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","labels":{"app":"a"}},"status":{"podIP":"10.0.0.1"}}', 'p.json');
  assert.deepEqual(r.errors, []);
  assert.equal(r.objects[0]?.kind, 'Pod');
  assert.deepEqual(r.objects[0]?.metadata.labels, { app: 'a' });
  assert.deepEqual(r.objects[0]?.body['status'], { podIP: '10.0.0.1' });
});

test('kind: List and *List documents yield their items, with item indexes', () => {
  const json = JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'a' }, spec: { ports: [{ port: 80 }] } },
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'b' }, spec: { ports: [{ port: 81 }] } },
    ],
  });
  const r = parseDocuments(json, 'list.json');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(
    r.objects.map((o) => [o.metadata.name, o.origin]),
    [
      ['a', { source: 'list.json', document: 0, item: 0 }],
      ['b', { source: 'list.json', document: 0, item: 1 }],
    ],
  );
  const yaml = `apiVersion: v1\nkind: ServiceList\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: c}\n`;
  assert.deepEqual(
    parseDocuments(yaml, 'l.yaml').objects.map((o) => o.metadata.name),
    ['c'],
  );
});

test('errors inside a List name the item and prefix the path with items[i]', () => {
  const yaml = `apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: ok}\n- apiVersion: v1\n  kind: Service\n  metadata: {namespace: x}\n`;
  const r = parseDocuments(yaml, 'l.yaml');
  assert.equal(r.objects.length, 1);
  const e = onlyError(r.errors);
  assert.equal(e.document, 0);
  assert.equal(e.item, 1);
  assert.equal(e.errors[0]?.path, 'items[1].metadata.name');
  const notList = parseDocuments('apiVersion: v1\nkind: List\nitems: 3\n', 'l.yaml');
  assert.equal(onlyError(notList.errors).errors[0]?.path, 'items');
});

test('a YAML syntax error is reported for its document with line information; other documents still parse', () => {
  const text = `${SERVICE}---\napiVersion: v1\nkind: Service\nmetadata: {name: broken\n---\n${SERVICE.replace('details', 'ratings')}`;
  const r = parseDocuments(text, 'bad.yaml');
  assert.deepEqual(
    r.objects.map((o) => [o.metadata.name, o.origin.document]),
    [
      ['details', 0],
      ['ratings', 2],
    ],
  );
  const e = onlyError(r.errors);
  assert.equal(e.source, 'bad.yaml');
  assert.equal(e.document, 1);
  assert.match(e.errors[0]?.message ?? '', /YAML syntax error: .*line \d+, column \d+/);
});

test('duplicate mapping keys are a syntax error (as in Kubernetes strict decoding)', () => {
  const r = parseDocuments('apiVersion: v1\nkind: Namespace\nmetadata: {name: a, name: b}\n', 'dup.yaml');
  assert.equal(r.objects.length, 0);
  assert.match(onlyError(r.errors).errors[0]?.message ?? '', /unique/);
});

test('an unknown kind is an error at `kind` naming the kind and apiVersion, not fatal', () => {
  const r = parseDocuments(`apiVersion: x/v1\nkind: Foo\nmetadata: {name: f}\n---\n${SERVICE}`, 'k.yaml');
  assert.equal(r.objects.length, 1);
  const e = onlyError(r.errors);
  assert.equal(e.kind, 'Foo');
  assert.equal(e.name, 'f');
  assert.equal(e.errors[0]?.path, 'kind');
  assert.match(e.errors[0]?.message ?? '', /unsupported kind "Foo" \(apiVersion x\/v1\)/);
});

test('a wrong apiVersion for a known kind is an error at `apiVersion`', () => {
  const cases: Array<[string, string]> = [
    ['apps/v1', 'Service'],
    ['v2', 'Pod'],
    ['discovery.k8s.io/v1beta1', 'EndpointSlice'],
    ['networking.istio.io/v2', 'VirtualService'],
    ['security.istio.io/v1', 'DestinationRule'],
    ['v1', 'VirtualService'],
  ];
  for (const [apiVersion, kind] of cases) {
    const r = parseDocuments(`apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: {name: x}\n`, 'v.yaml');
    const e = onlyError(r.errors);
    assert.equal(e.errors[0]?.path, 'apiVersion', `${apiVersion} ${kind}`);
    assert.match(e.errors[0]?.message ?? '', new RegExp(`unsupported apiVersion "${apiVersion}" for kind ${kind}`));
  }
});

test('every accepted kind and apiVersion parses', () => {
  const cases: Array<[string, string]> = [
    ['v1', 'Namespace'],
    ['v1', 'Service'],
    ['v1', 'Endpoints'],
    ['v1', 'Pod'],
    ['discovery.k8s.io/v1', 'EndpointSlice'],
    ['networking.istio.io/v1', 'VirtualService'],
    ['networking.istio.io/v1beta1', 'VirtualService'],
    ['networking.istio.io/v1alpha3', 'VirtualService'],
    ['networking.istio.io/v1', 'DestinationRule'],
    ['networking.istio.io/v1beta1', 'DestinationRule'],
    ['networking.istio.io/v1alpha3', 'DestinationRule'],
  ];
  for (const [apiVersion, kind] of cases) {
    const r = parseDocuments(`apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: {name: x}\n`, 'ok.yaml');
    assert.deepEqual(r.errors, [], `${apiVersion} ${kind}`);
    assert.equal(r.objects[0]?.kind, kind);
  }
});

test('missing kind, apiVersion or metadata.name are errors at their paths', () => {
  assert.equal(onlyError(parseDocuments('apiVersion: v1\nmetadata: {name: a}\n', 'f').errors).errors[0]?.path, 'kind');
  assert.equal(onlyError(parseDocuments('kind: Pod\nmetadata: {name: a}\n', 'f').errors).errors[0]?.path, 'apiVersion');
  for (const meta of ['', 'metadata: {namespace: a}\n', 'metadata: {name: ""}\n', 'metadata: {name: 7}\n']) {
    const e = onlyError(parseDocuments(`apiVersion: v1\nkind: Pod\n${meta}`, 'f').errors);
    assert.equal(e.errors[0]?.path, 'metadata.name', meta);
  }
  assert.equal(onlyError(parseDocuments('apiVersion: v1\nkind: Pod\nmetadata: [a]\n', 'f').errors).errors[0]?.path, 'metadata');
});

test('namespaced kinds default to the default namespace; Namespace itself has none', () => {
  const r = parseDocuments(`${SERVICE}---\napiVersion: v1\nkind: Namespace\nmetadata: {name: shop, namespace: ignored}\n`, 'f');
  assert.deepEqual(
    r.objects.map((o) => o.metadata.namespace),
    ['default', ''],
  );
});

test('labels and annotations default to {} and must map strings to strings', () => {
  const ok = parseDocuments(SERVICE, 'f').objects[0];
  assert.deepEqual(ok?.metadata.labels, {});
  assert.deepEqual(ok?.metadata.annotations, {});
  const bad = parseDocuments('apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {app: a, replicas: 3, on: true}\n  annotations: {note: [x]}\n', 'f');
  const e = onlyError(bad.errors);
  assert.equal(e.name, 'p');
  assert.deepEqual(
    e.errors.map((x) => x.path),
    ['metadata.labels.replicas', 'metadata.labels.on', 'metadata.annotations.note'],
  );
  assert.match(e.errors[0]?.message ?? '', /must be a string/);
  const dotted = onlyError(parseDocuments('apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {"app.kubernetes.io/version": 2}\n', 'f').errors);
  assert.equal(dotted.errors[0]?.path, 'metadata.labels["app.kubernetes.io/version"]');
  const notMap = onlyError(parseDocuments('apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: [a]}\n', 'f').errors);
  assert.equal(notMap.errors[0]?.path, 'metadata.labels');
});

test('resourceVersion and generation are read when present', () => {
  const r = parseDocuments('apiVersion: v1\nkind: Pod\nmetadata: {name: p, resourceVersion: "42", generation: 3}\n', 'f');
  assert.equal(r.objects[0]?.metadata.resourceVersion, '42');
  assert.equal(r.objects[0]?.metadata.generation, 3);
});

test('a document that is not a mapping is an error', () => {
  for (const text of ['just a string\n', '- a\n- b\n', '42\n']) {
    const e = onlyError(parseDocuments(text, 'f').errors);
    assert.equal(e.document, 0);
    assert.match(e.errors[0]?.message ?? '', /must be a Kubernetes object/);
  }
});

test('the body is the whole object, frozen, with null-valued entries dropped', () => {
  const r = parseDocuments('apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  type:\n  ports:\n  - {port: 80, name: ~}\n', 'f');
  const body = r.objects[0]?.body;
  assert.ok(body);
  assert.deepEqual(body['spec'], { ports: [{ port: 80 }] });
  assert.equal(body['kind'], 'Service');
  assert.ok(Object.isFrozen(body) && Object.isFrozen(body['spec']));
  assert.ok(Object.isFrozen(r.objects[0]?.metadata));
});

test('YAML anchors and merge keys are expanded; alias bombs are refused', () => {
  const text = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: &l {app: a}\n  annotations:\n    <<: *l\n    extra: x\n';
  const r = parseDocuments(text, 'f');
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.objects[0]?.metadata.annotations, { app: 'a', extra: 'x' });
  let bomb = 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n';
  for (let i = 1; i < 8; i++)
    bomb += `a${i}: &a${i} [${Array(10)
      .fill(`*a${i - 1}`)
      .join(', ')}]\n`;
  const b = parseDocuments(`${bomb}apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n`, 'bomb.yaml');
  assert.equal(b.objects.length, 0);
  assert.equal(onlyError(b.errors).document, 0);
});

test('the fast YAML reader and the careful one read every example and test input alike', () => {
  const root = path.join(__dirname, '..');
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(e.name)) files.push(p);
    }
  };
  walk(path.join(root, 'examples'));
  walk(path.join(root, 'deploy'));
  const obj = (spec: string): string => `apiVersion: v1\nkind: Service\nmetadata: { name: a, namespace: b }\nspec:\n${spec}`;
  const edge = [
    obj('  a: 010\n  b: 0o10\n  c: 2024-01-01\n  d: yes\n  e: ~\n  f: 1e3\n  g: 0x1F\n  h: .inf\n  i: "0777"\n'),
    obj('  base: &b { x: 1 }\n  use: { <<: *b, y: 2 }\n'),
    obj('  use: { <<: { x: 1 }, y: 2 }\n'),
    'apiVersion: v1\nkind: Service\nmetadata: { name: a, namespace: b }\nmetadata: { name: dup }\n',
    '---\n# only a comment\n---\napiVersion: v1\nkind: Namespace\nmetadata: { name: x }\n...\n',
    obj('  key: !custom value\n'),
    'a: [1, 2\n',
  ];
  let compared = 0;
  for (const text of [...files.map((f) => fs.readFileSync(f, 'utf8')), ...edge]) {
    assert.deepEqual(parseDocuments(text, 'x.yaml'), parseDocuments(text, 'x.yaml', { careful: true }), text.slice(0, 80));
    compared++;
  }
  assert.ok(compared > 20, `compared ${compared} inputs`);
});
