/**
 * deploy/kind/: the scripts that prove routing with real Envoy sidecars where Docker exists,
 * checked here without one. Every script is strict bash that parses; every file they apply
 * exists, and the Istio objects among them are ones meshd accepts in versions the CRDs serve;
 * meshd's injector, given the kind mesh config, gives sidecars the plaintext settings the kind
 * setup relies on; and check.sh itself, run against a stand-in kubectl, passes when the cluster routes as Istio's
 * tasks promise and fails (exit 1, with the failing check named) when it does not.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { parseDocuments } from '../src/sources/parse';
import { DEPLOY, ROOT, type J, at, documents, filesUnder, rec, recs } from './helpers/deploy-manifests';

const scripts = (): string[] => filesUnder(DEPLOY, (n) => n.endsWith('.sh'));

test('every shell script under deploy/ starts with set -euo pipefail and passes bash -n', () => {
  const all = scripts();
  assert.deepEqual(all.filter((f) => f.startsWith('kind/')).sort(), ['kind/bookinfo.sh', 'kind/check.sh', 'kind/down.sh', 'kind/lib.sh', 'kind/up.sh']);
  for (const file of all) {
    const text = fs.readFileSync(path.join(DEPLOY, file), 'utf8');
    assert.ok(text.startsWith('#!/usr/bin/env bash\n'), `${file}: bash shebang`);
    const first = text
      .split('\n')
      .slice(1)
      .map((l) => l.trim())
      .find((l) => l !== '' && !l.startsWith('#'));
    assert.equal(first, 'set -euo pipefail', `${file}: first command`);
    const r = spawnSync('bash', ['-n', path.join(DEPLOY, file)], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 0, `${file}: bash -n: ${r.stderr}`);
  }
});

test('shellcheck finds nothing in the kind scripts (where shellcheck is installed)', (t) => {
  if (spawnSync('shellcheck', ['--version'], { encoding: 'utf8' }).status !== 0) {
    t.skip('shellcheck is not installed');
    return;
  }
  const r = spawnSync('shellcheck', ['-x', ...scripts().map((f) => path.basename(f))], { cwd: path.join(DEPLOY, 'kind'), encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

/** `${DEPLOY}/…`, `${EXAMPLES}/…` and `${STEPS}/…` paths in the scripts, resolved in the repository. */
function referencedPaths(): Array<{ script: string; ref: string; abs: string }> {
  const roots: Record<string, string> = { DEPLOY, EXAMPLES: path.join(ROOT, 'examples'), STEPS: path.join(ROOT, 'examples', 'traffic-management') };
  const out: Array<{ script: string; ref: string; abs: string }> = [];
  for (const script of scripts()) {
    const text = fs.readFileSync(path.join(DEPLOY, script), 'utf8');
    for (const m of text.matchAll(/\$\{(DEPLOY|EXAMPLES|STEPS)\}"?(\/[A-Za-z0-9_.*/-]*)/g)) {
      out.push({ script, ref: m[0], abs: path.join(roots[m[1] as string] as string, m[2] as string) });
    }
  }
  return out;
}

/** The files a path names: itself, the YAML files of a folder, or the matches of a `*` glob; null if nothing is there. */
function expand(abs: string): string[] | null {
  const base = path.basename(abs);
  if (base.includes('*')) {
    const re = new RegExp(
      `^${base
        .split('*')
        .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
    );
    const dir = path.dirname(abs);
    const hits = fs.existsSync(dir)
      ? fs
          .readdirSync(dir)
          .filter((f) => re.test(f))
          .map((f) => path.join(dir, f))
      : [];
    return hits.length > 0 ? hits : null;
  }
  if (!fs.existsSync(abs)) return null;
  if (fs.statSync(abs).isDirectory())
    return fs
      .readdirSync(abs)
      .filter((f) => /\.ya?ml$/.test(f))
      .map((f) => path.join(abs, f));
  return [abs];
}

test('the kind scripts apply files that exist, and the Istio objects in them are served by the CRDs and accepted by meshd', () => {
  const refs = referencedPaths();
  for (const want of ['/crds/', '/kind/mesh-plaintext.yaml', '/kind/sleep.yaml', '2-request-routing-jason', '5-traffic-shifting-50-v3', 'destinationrules.yaml']) {
    assert.ok(
      refs.some((r) => r.abs.includes(want)),
      `no script references ${want}`,
    );
  }
  const served = new Set<string>();
  for (const file of filesUnder(path.join(DEPLOY, 'crds'), (n) => n.endsWith('.yaml'))) {
    for (const { obj } of documents(file)) {
      for (const v of recs(at(obj, 'spec.versions'), 'versions')) {
        if (v['served'] === true) served.add(`${String(at(obj, 'spec.group'))}/${String(v['name'])} ${String(at(obj, 'spec.names.kind'))}`);
      }
    }
  }
  let istioObjects = 0;
  for (const { script, ref, abs } of refs) {
    const files = expand(abs);
    assert.ok(files, `${script}: ${ref} names nothing`);
    if (!abs.startsWith(path.join(ROOT, 'examples'))) continue;
    for (const f of files) {
      const r = parseDocuments(fs.readFileSync(f, 'utf8'), f);
      assert.deepEqual(r.errors, [], `${script}: ${f}`);
      for (const o of r.objects) {
        assert.ok(served.has(`${o.apiVersion} ${o.kind}`), `${f}: ${o.apiVersion} ${o.kind} is not served by deploy/crds`);
        istioObjects++;
      }
    }
  }
  assert.ok(istioObjects >= 6, `only ${istioObjects} Istio objects applied by the scripts`);
});

test("bookinfo.sh's kube-inject path: meshd's injector with mesh-plaintext.yaml gives istio-proxy the plaintext settings", () => {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'src', 'cli', 'meshctl.ts'), 'kube-inject', '-f', '-', '--mesh-config', path.join(DEPLOY, 'kind', 'mesh-plaintext.yaml')],
    {
      cwd: ROOT,
      input: fs.readFileSync(path.join(DEPLOY, 'kind', 'sleep.yaml'), 'utf8'),
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  assert.equal(r.status, 0, r.stderr);
  const objs = parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as unknown)
    .filter((o): o is J => typeof o === 'object' && o !== null);
  assert.deepEqual(
    objs.map((o) => o['kind']),
    ['ServiceAccount', 'Service', 'Deployment'],
  );
  const dep = objs[2] as J;
  const proxy = recs(at(dep, 'spec.template.spec.containers'), 'containers').find((c) => c['name'] === 'istio-proxy');
  assert.ok(proxy, 'no istio-proxy injected');
  const env = new Map(
    recs(proxy['env'], 'env')
      .filter((e) => typeof e['value'] === 'string')
      .map((e) => [String(e['name']), String(e['value'])]),
  );
  assert.equal(env.get('ISTIO_DELTA_XDS'), undefined, 'sidecars keep their default, delta xDS');
  assert.equal(env.get('CA_ADDR'), 'istiod.istio-system.svc:15010');
  const proxyConfig = rec(JSON.parse(env.get('PROXY_CONFIG') ?? 'null'), 'PROXY_CONFIG');
  assert.equal(proxyConfig['discoveryAddress'], 'istiod.istio-system.svc:15010');
  assert.equal(proxyConfig['controlPlaneAuthPolicy'], 'NONE');
  assert.ok(String(proxy['image']).startsWith('docker.io/istio/proxyv2:'), String(proxy['image']));
  // The pod keeps the annotation pilot-agent reads itself.
  assert.ok(String(rec(at(dep, 'spec.template.metadata.annotations'), 'annotations')['proxy.istio.io/config']).includes('"controlPlaneAuthPolicy":"NONE"'));
});

/**
 * A stand-in for kubectl, answering check.sh as a cluster would: `apply` records which routing
 * step is in force; `exec … curl` answers with a bookinfo reviews body (JSON, or productpage's
 * "Reviews served by" HTML) from the version that routing picks. FAKE_MODE: `good` routes as
 * Istio does (jason → v2, others → v1; the 50/50 step alternates v1 and v3), `broken` ignores
 * the routing (always v1) and runs no sidecars, `noshift` ignores only the traffic-shifting step.
 */
const FAKE_KUBECTL = `#!/usr/bin/env bash
set -euo pipefail
all=" $* "
printf '%s\\n' "$(tr '\\n' ' ' <<<"$*")" >> "\${FAKE_LOG:?}"
case "\${all}" in
  *" apply "*)
    case "\${all}" in
      *5-traffic-shifting-50-v3*) echo shift > "\${FAKE_STATE:?}" ;;
      *2-request-routing-jason*|*virtualservice-reviews.yaml*) echo jason > "\${FAKE_STATE:?}" ;;
    esac
    echo applied; exit 0 ;;
  *" get pods "*) if [[ \${FAKE_MODE} == broken ]]; then echo app; else echo "istio-init istio-proxy app"; fi; exit 0 ;;
  *" exec deploy/sleep -c sleep -- "*) ;;
  *) echo "fake kubectl: unexpected: $*" >&2; exit 2 ;;
esac
routing="$(cat "\${FAKE_STATE}" 2>/dev/null || echo none)"
user=""
if [[ \${all} == *"end-user: jason"* ]]; then user=jason; fi
if [[ \${all} == *" sh -c "* ]]; then user="\${*: -1}"; fi
n=$(( $(cat "\${FAKE_STATE}.n" 2>/dev/null || echo 0) + 1 )); echo "\${n}" > "\${FAKE_STATE}.n"
version=v1
case "\${FAKE_MODE:?}/\${routing}" in
  good/jason|noshift/jason) if [[ \${user} == jason ]]; then version=v2; fi ;;
  good/shift) if (( n % 2 )); then version=v3; fi ;;
esac
pod="reviews-\${version}-5f7b9c6d8-x2x9q"
if [[ \${all} == *productpage* ]]; then
  printf '<html><body><h4>Book Reviews</h4><small>Reviews served by: <u>%s</u></small></body></html>\\n' "\${pod}"
else
  printf '{"id": "0","podname": "%s","clustername": "null","reviews": [{"reviewer": "Reviewer1", "text": "An extremely entertaining play."}]}\\n' "\${pod}"
fi
`;

function runCheck(mode: string, waitSeconds: number): { status: number | null; out: string; calls: string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-kind-check-'));
  try {
    fs.writeFileSync(path.join(dir, 'kubectl'), FAKE_KUBECTL, { mode: 0o755 });
    const env = {
      ...process.env,
      PATH: `${dir}${path.delimiter}${process.env['PATH'] ?? ''}`,
      KIND_CLUSTER: 'fake-e2e',
      CALLS: '4',
      SHIFT_CALLS: '10',
      WAIT_SECONDS: String(waitSeconds),
      FAKE_MODE: mode,
      FAKE_STATE: path.join(dir, 'state'),
      FAKE_LOG: path.join(dir, 'calls'),
    };
    const r = spawnSync('bash', [path.join(DEPLOY, 'kind', 'check.sh')], { env, encoding: 'utf8', timeout: 120_000 });
    const calls = fs.existsSync(env.FAKE_LOG) ? fs.readFileSync(env.FAKE_LOG, 'utf8').trim().split('\n') : [];
    return { status: r.status, out: r.stdout + r.stderr, calls };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('check.sh passes against a cluster that routes as Istio does, always through the kind context', () => {
  const r = runCheck('good', 20);
  assert.equal(r.status, 0, r.out);
  assert.doesNotMatch(r.out, /FAIL/);
  for (const line of [
    'reviews with end-user: jason, 4 calls (v1=0 v2=4 v3=0 error=0)',
    'reviews without end-user, 4 calls (v1=4 v2=0 v3=0 error=0)',
    'productpage, anonymous, 4 calls (v1=4',
    'productpage logged in as jason, 4 calls (v1=0 v2=4',
    'reviews over 10 calls reached v1 and v3 only',
    'PASS: all checks',
  ]) {
    assert.ok(r.out.includes(line), `missing "${line}" in:\n${r.out}`);
  }
  assert.ok(r.calls.length > 30, `only ${r.calls.length} kubectl calls`);
  for (const c of r.calls) assert.ok(c.startsWith('--context kind-fake-e2e '), `kubectl called outside the kind context: ${c}`);
});

test('check.sh fails, naming the check, without sidecars or when routing ignores the end-user header or the traffic shift', () => {
  const broken = runCheck('broken', 3);
  assert.equal(broken.status, 1, broken.out);
  assert.match(broken.out, /FAIL: sleep has no istio-proxy container/);
  assert.match(broken.out, /FAIL: reviews never answered end-user jason from v2/);
  assert.match(broken.out, /FAIL: reviews never answered from v3/);
  assert.match(broken.out, /FAIL: 5 check\(s\) failed/);

  const noshift = runCheck('noshift', 3);
  assert.equal(noshift.status, 1, noshift.out);
  assert.match(noshift.out, /PASS: reviews with end-user: jason/);
  assert.match(noshift.out, /FAIL: reviews never answered from v3/);
  assert.doesNotMatch(noshift.out, /PASS: all checks/);
});
