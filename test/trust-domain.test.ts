/**
 * The configured trust domain and its aliases in generated config: SAN matchers of outbound
 * clusters and AuthorizationPolicy principals, as istiod's trustdomain.Bundle spells them; and the
 * injected sidecar's TRUST_DOMAIN.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildSnapshot } from '../src/model/build';
import type { ConfigObject } from '../src/model/objects';
import { parseDocuments } from '../src/sources/parse';
import { expandPrincipal, trustDomainBundle } from '../src/model/trust-domain';
import { EnvoyProtos } from '../src/xds/protos';
import { render } from './helpers/render';

const protos = new EnvoyProtos();

const YAML_TEXT = `
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: default }
spec: { selector: { app: echo }, ports: [{ name: grpc, port: 7070, targetPort: 7070 }] }
---
apiVersion: v1
kind: Pod
metadata: { name: echo-0, namespace: default, labels: { app: echo } }
spec: { serviceAccountName: echo, containers: [{ name: app }] }
status: { podIP: 127.0.0.9, phase: Running }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: echo-0, namespace: default, labels: { kubernetes.io/service-name: echo } }
addressType: IPv4
ports: [{ name: grpc, port: 7070, protocol: TCP }]
endpoints: [{ addresses: [127.0.0.9], conditions: { ready: true }, targetRef: { kind: Pod, name: echo-0, namespace: default } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo, namespace: default }
spec: { host: echo, trafficPolicy: { tls: { mode: ISTIO_MUTUAL } } }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-sleep, namespace: default }
spec:
  selector: { matchLabels: { app: echo } }
  action: ALLOW
  rules: [{ from: [{ source: { principals: [cluster.local/ns/default/sa/sleep, other.org/ns/default/sa/x, '*/ns/default/sa/any'] } }] }]
`;
const parsed = parseDocuments(YAML_TEXT, 'test.yaml');
const OBJECTS: ConfigObject[] = parsed.objects;

function snapshot(trustDomain: string, aliases: string[]) {
  return buildSnapshot({ objects: OBJECTS, errors: [], sequence: 1, now: new Date(0), domain: 'cluster.local', trustDomain, trustDomainAliases: aliases });
}

test('the fixture parses', () => assert.deepEqual(parsed.errors, []));

test("expandPrincipal: cluster.local and the bundle's domains expand; others and unpinned ones stay", () => {
  const bundle = trustDomainBundle('example.org', ['old.example', 'example.org']);
  assert.deepEqual(bundle, ['example.org', 'old.example']);
  assert.deepEqual(expandPrincipal('cluster.local/ns/a/sa/b', bundle), ['example.org/ns/a/sa/b', 'old.example/ns/a/sa/b']);
  assert.deepEqual(expandPrincipal('old.example/ns/a/sa/b', bundle), ['example.org/ns/a/sa/b', 'old.example/ns/a/sa/b']);
  assert.deepEqual(expandPrincipal('other.org/ns/a/sa/b', bundle), ['other.org/ns/a/sa/b']);
  assert.deepEqual(expandPrincipal('*/ns/a/sa/b', bundle), ['*/ns/a/sa/b']);
  assert.deepEqual(expandPrincipal('*', bundle), ['*']);
});

test('outbound SAN matchers name the configured trust domain and every alias', () => {
  const sans = (td: string, aliases: string[]): string[] => {
    const r = render(protos, snapshot(td, aliases), 'sidecar~127.0.0.8~sleep-0.default~default.svc.cluster.local', { NAMESPACE: 'default' });
    assert.deepEqual(r.rejected, []);
    const c = (r.byType['CDS'] ?? []).find((x) => x.name === 'outbound|7070||echo.default.svc.cluster.local');
    const text = JSON.stringify(c);
    return [...text.matchAll(/spiffe:\/\/[^"]+/g)].map((m) => m[0]).sort();
  };
  assert.deepEqual([...new Set(sans('cluster.local', []))], ['spiffe://cluster.local/ns/default/sa/echo']);
  assert.deepEqual([...new Set(sans('example.org', []))], ['spiffe://example.org/ns/default/sa/echo']);
  assert.deepEqual([...new Set(sans('example.org', ['old.example']))], ['spiffe://example.org/ns/default/sa/echo', 'spiffe://old.example/ns/default/sa/echo']);
});

test('AuthorizationPolicy principals are spelled for the bundle in the inbound RBAC filter', () => {
  const r = render(protos, snapshot('example.org', ['old.example']), 'sidecar~127.0.0.9~echo-0.default~default.svc.cluster.local', {
    NAMESPACE: 'default',
    LABELS: { app: 'echo' },
  });
  assert.deepEqual(r.rejected, []);
  const text = JSON.stringify(r.byType['LDS']);
  for (const p of ['spiffe://example.org/ns/default/sa/sleep', 'spiffe://old.example/ns/default/sa/sleep', 'spiffe://other.org/ns/default/sa/x']) assert.ok(text.includes(p), p);
  assert.ok(!text.includes('spiffe://cluster.local/ns/default/sa/sleep'), 'cluster.local means this mesh: replaced');
  // The default mesh keeps what was written.
  const d = JSON.stringify(
    render(protos, snapshot('cluster.local', []), 'sidecar~127.0.0.9~echo-0.default~default.svc.cluster.local', { NAMESPACE: 'default', LABELS: { app: 'echo' } }).byType['LDS'],
  );
  assert.ok(d.includes('spiffe://cluster.local/ns/default/sa/sleep'));
});
