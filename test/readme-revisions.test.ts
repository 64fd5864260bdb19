/**
 * The README's canary walkthrough ("Upgrading by canary: revisions and tags"), played as written
 * against the fake Kubernetes API server holding the default install's webhooks and revision
 * `meshd`'s (rendered from deploy/ with kubectl kustomize): every `meshctl tag` command runs, every
 * `kubectl label namespace` is applied, and after each step the test asks where the API server
 * would send a new pod of `bookinfo` and of `shop`. Every other command must name what the
 * manifests install (Deployments, ports, service accounts, kustomize folders) and use flags that
 * meshctl has; a command this test does not understand fails it, so the script cannot drift.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { Command } from 'commander';
import { meshctl } from '../src/cli/meshctl';
import { tagCommand } from '../src/cli/tag';
import { DEPLOY, ROOT, type Doc, haveKustomize, kustomize, meshdContainer, recs } from './helpers/deploy-manifests';
import { type KubeApiServer, startKubeApiServer } from './helpers/kube-api-server';
import { mutatingConfigs, namespaceLabels, podCreateServices } from './helpers/webhook-routing';

const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const NS = 'istio-system';

function section(): string {
  const start = README.indexOf('## Upgrading by canary: revisions and tags');
  assert.ok(start >= 0, 'README: the canary section');
  const end = README.indexOf('\n## ', start + 5);
  return README.slice(start, end < 0 ? undefined : end);
}

/** The walkthrough's commands: each line of its ```sh block, comments and blank lines dropped. */
function script(): string[] {
  const block = /```sh\n([\s\S]*?)```/.exec(section());
  assert.ok(block, 'README canary section: a ```sh block');
  return (block[1] as string)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** Shell words of one line (single quotes kept together), without a trailing `&` or a `> file` redirect. */
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/'([^']*)'|(\S+)/g)) out.push(m[1] ?? (m[2] as string));
  const redirect = out.indexOf('>');
  const w = redirect >= 0 ? out.slice(0, redirect) : out;
  return w[w.length - 1] === '&' ? w.slice(0, -1) : w;
}

let api: KubeApiServer | undefined;
let defaultInstall: Doc[] = [];
let revision: Doc[] = [];

before(async () => {
  if (!haveKustomize()) return;
  defaultInstall = kustomize('.');
  revision = kustomize('revision');
  api = await startKubeApiServer();
  // A mesh as the walkthrough assumes: the default revision injecting istio-injection=enabled namespaces.
  for (const d of defaultInstall) if (String(d.obj['kind']).endsWith('WebhookConfiguration')) api.store.create(d.obj);
  for (const name of ['bookinfo', 'shop']) api.store.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'istio-injection': 'enabled' } } });
});
after(async () => {
  await api?.close();
});

function skipWithoutKustomize(t: TestContext): boolean {
  if (haveKustomize()) return false;
  assert.notEqual(process.env['CI'], 'true', 'kubectl (with kustomize) is required on CI');
  t.skip('kubectl not installed');
  return true;
}

/** Where a new pod of the namespace would be sent for injection. */
function injector(ns: string): string[] {
  const k = api as KubeApiServer;
  const n = k.store.get('v1', 'Namespace', '', ns);
  assert.ok(n);
  const labels = ((n['metadata'] as { labels?: Record<string, string> }).labels ?? {}) as Record<string, string>;
  return podCreateServices(mutatingConfigs(k), namespaceLabels(ns, labels), {});
}

const installed = (kind: string, name: string, namespace?: string): boolean =>
  [...defaultInstall, ...revision].some(
    (d) =>
      d.obj['kind'] === kind &&
      (d.obj['metadata'] as { name?: string }).name === name &&
      (namespace === undefined || (d.obj['metadata'] as { namespace?: string }).namespace === namespace),
  );

/** The long flags a meshctl command path accepts. */
function meshctlFlags(path: string[]): Set<string> {
  let cmd: Command = meshctl();
  for (const p of path) {
    const next = cmd.commands.find((c) => c.name() === p || c.aliases().includes(p));
    assert.ok(next, `meshctl has no command ${path.join(' ')}`);
    cmd = next;
  }
  return new Set(cmd.options.flatMap((o) => [o.long, o.short].filter((x): x is string => typeof x === 'string')));
}

async function runMeshctl(args: string[]): Promise<string> {
  let out = '';
  let err = '';
  const io = { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, stdin: () => '' };
  const before = process.exitCode;
  process.exitCode = 0;
  await new Command('meshctl')
    .exitOverride()
    .addCommand(tagCommand(io))
    .parseAsync(['node', 'meshctl', ...args, '--kubeconfig', (api as KubeApiServer).kubeconfigPath]);
  const code = process.exitCode;
  process.exitCode = before;
  assert.equal(err, '', `meshctl ${args.join(' ')}`);
  assert.equal(code, 0, `meshctl ${args.join(' ')}`);
  return out;
}

/** Checks or performs one command of the script. */
async function play(line: string): Promise<void> {
  const w = words(line);
  const [bin, ...rest] = w;
  if (bin === 'mkdir') return;
  if (bin === 'meshctl') {
    const [verb] = rest;
    if (verb === 'tag') {
      const out = await runMeshctl(rest);
      if (rest[1] === 'list') assert.match(out, /^default +meshd *$/m, `meshctl tag list printed:\n${out}`);
      return;
    }
    assert.equal(verb, 'proxy-status', `README runs meshctl ${String(verb)}, which this test does not check`);
    const flags = meshctlFlags(['proxy-status']);
    for (const a of rest.filter((x) => x.startsWith('-'))) assert.ok(flags.has(a), `meshctl proxy-status has no ${a}`);
    const san = rest[rest.indexOf('--xds-san') + 1];
    assert.equal(san, `istiod-meshd.${NS}.svc`, "the revision's Service name, as its serving certificate carries it");
    assert.ok(installed('Service', 'istiod-meshd', NS));
    return;
  }
  assert.equal(bin, 'kubectl', `README runs ${String(bin)}, which this test does not check`);
  const nsAt = rest.indexOf('-n');
  const namespace = nsAt >= 0 ? rest[nsAt + 1] : undefined;
  const args = nsAt >= 0 ? [...rest.slice(0, nsAt), ...rest.slice(nsAt + 2)] : rest;
  const [verb, ...more] = args;
  switch (verb) {
    case 'apply':
    case 'delete': {
      assert.equal(more[0], '-k');
      const dir = String(more[1]);
      assert.match(dir, /^deploy\//);
      assert.ok(fs.existsSync(path.join(DEPLOY, dir.slice('deploy/'.length), 'kustomization.yaml')), `${dir} is a kustomization`);
      assert.ok(kustomize(dir.slice('deploy/'.length)).length > 0);
      return;
    }
    case 'label': {
      assert.equal(more[0], 'namespace');
      const name = String(more[1]);
      const k = api as KubeApiServer;
      const n = k.store.get('v1', 'Namespace', '', name);
      assert.ok(n, `namespace ${name}`);
      const labels: Record<string, string | null> = {};
      for (const l of more.slice(2)) {
        if (l.endsWith('-')) labels[l.slice(0, -1)] = null;
        else {
          const [key, value] = l.split('=');
          labels[key as string] = value ?? '';
        }
      }
      k.store.patch('v1', 'Namespace', '', name, { metadata: { labels } }, 'merge');
      return;
    }
    case 'rollout': {
      assert.ok(namespace, 'rollout with -n');
      if (more[0] === 'restart') {
        assert.deepEqual(more.slice(1), ['deployment']);
        assert.ok(['bookinfo', 'shop'].includes(namespace as string));
      } else {
        assert.equal(more[0], 'status');
        const [kind, name] = String(more[1]).split('/');
        assert.equal(kind, 'deployment');
        assert.ok(installed('Deployment', String(name), namespace), `Deployment ${namespace}/${String(name)}`);
      }
      return;
    }
    case 'port-forward': {
      const [kind, name] = String(more[0]).split('/');
      assert.equal(kind, 'deployment');
      const c = meshdContainer(revision, String(name));
      const [local, remote] = String(more[1]).split(':').map(Number);
      assert.ok(
        recs(c['ports'], 'ports').some((p) => p['containerPort'] === remote),
        `container port ${String(remote)}`,
      );
      assert.equal(local, remote);
      return;
    }
    case 'get': {
      assert.deepEqual(more.slice(0, 2), ['configmap', 'istio-ca-root-cert'], 'the root bundle every namespace gets');
      assert.match(line, /jsonpath='\{\.data\.root-cert\\\.pem\}'/);
      assert.match(line, /> meshd-ca\/root-cert\.pem$/);
      return;
    }
    case 'create': {
      assert.equal(more[0], 'token');
      assert.ok(installed('ServiceAccount', String(more[1]), namespace), `ServiceAccount ${String(namespace)}/${String(more[1])}`);
      assert.match(line, /> meshd-ca\/token$/);
      return;
    }
    default:
      assert.fail(`README runs kubectl ${String(verb)}, which this test does not check`);
  }
}

test('the README canary walkthrough moves bookinfo, then the rest, to meshd and rolls back, as written', async (t) => {
  if (skipWithoutKustomize(t)) return;
  const lines = script();
  assert.ok(lines.some((l) => l.startsWith('meshctl tag set default --revision meshd')));
  const log: string[] = [];
  const snapshot = (): string => `bookinfo→${injector('bookinfo').join(',') || 'none'} shop→${injector('shop').join(',') || 'none'}`;
  let applied = false;
  for (const line of lines) {
    await play(line);
    if (/^kubectl apply -k deploy\/revision\/?$/.test(line)) {
      // What `kubectl apply` would add: the revision's webhooks.
      for (const d of revision) if (String(d.obj['kind']).endsWith('WebhookConfiguration')) (api as KubeApiServer).store.create(d.obj);
      applied = true;
    }
    if (/^kubectl delete -k deploy\/revision\/?$/.test(line)) {
      for (const d of revision) {
        const kind = String(d.obj['kind']);
        if (kind.endsWith('WebhookConfiguration'))
          (api as KubeApiServer).store.delete('admissionregistration.k8s.io/v1', kind, '', String((d.obj['metadata'] as { name: string }).name));
      }
    }
    if (/label namespace|tag set|-k deploy/.test(line)) log.push(`${line.split(' ').slice(0, 4).join(' ')}: ${snapshot()}`);
  }
  assert.ok(applied, 'the walkthrough installs the revision');
  const meshd = `${NS}/istiod-meshd`;
  const istiod = `${NS}/istiod`;
  assert.deepEqual(log, [
    `kubectl apply -k deploy/revision/: bookinfo→${istiod} shop→${istiod}`,
    `kubectl label namespace bookinfo: bookinfo→${meshd} shop→${istiod}`,
    `meshctl tag set default: bookinfo→${meshd} shop→${meshd}`,
    `meshctl tag set default: bookinfo→${meshd} shop→${istiod}`,
    `kubectl label namespace bookinfo: bookinfo→${istiod} shop→${istiod}`,
    `kubectl delete -k deploy/revision/: bookinfo→${istiod} shop→${istiod}`,
  ]);
});

test('the README names the Helm values the component stands for, and every flag it lists exists in meshctl tag', () => {
  const s = section();
  for (const v of ['`revision`', '`revisionTags`', '`meshConfig`', '`sidecarInjectorWebhook.enableNamespacesByDefault`']) assert.ok(s.includes(v), `README maps ${v}`);
  const set = meshctlFlags(['tag', 'set']);
  for (const f of [
    '--overwrite',
    '-y',
    '--skip-confirmation',
    '--webhook-name',
    '--auto-inject-namespaces',
    '-i',
    '--istio-namespace',
    '-d',
    '--manifests',
    '--revision',
    '--kubeconfig',
    '-c',
    '--context',
  ]) {
    assert.ok(set.has(f), `meshctl tag set has ${f}`);
    if (f.startsWith('--')) assert.ok(s.includes(f), `README mentions ${f}`);
  }
  assert.ok(meshctlFlags(['tag', 'list']).has('--output'));
  assert.ok(meshctlFlags(['tag', 'remove']).has('--skip-confirmation'));
  assert.ok(meshctlFlags(['tag', 'generate']).has('--revision'));
});
