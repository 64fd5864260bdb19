/**
 * The CA's roots: a plug-in CA made by openssl (root + intermediate, `cacerts` layout) and its
 * replacement without a restart; the self-signed root persisted and reloaded; rotation with an
 * overlap in the trust bundle; key files never written through a planted symlink, `--ca-dir` made
 * private, a readable plug-in key warned about; the `istio-ca-secret` Secret written by the leader
 * only, over the real Kubernetes protocol. Certificates are checked with openssl verify.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { MeshdAuthority } from '../src/ca/authority';
import { certsFromPem } from '../src/ca/roots';
import { CA_SECRET_TYPE, FolderRootStore, KubeSecretRootStore, type RootStore } from '../src/ca/root-store';
import { MeshdCa } from '../src/ca/setup';
import { loadKubeConfig } from '../src/sources/kube-http';
import { keyFragments, makeCsr, makePluginCa, quietLog, tmpDir, verify, writeCacerts, x509Text } from './helpers/ca-openssl';
import { startKubeApiServer } from './helpers/kube-api-server';
import { captureLog, waitFor } from './helpers/kube-testing';

const ID = 'spiffe://cluster.local/ns/default/sa/reviews';
const dir = tmpDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const csr = makeCsr(dir, 'rsa:2048').csrPem;
const fingerprints = (pem: string): string[] => certsFromPem(pem).map((c) => c.fingerprint256);

describe('plug-in root (cacerts)', { timeout: 60_000 }, () => {
  it('signs under an openssl-made intermediate, and follows a replaced cacerts folder without a restart', async () => {
    const a = makePluginCa(dir, { name: 'alpha', intermediateKey: 'P-256' });
    const b = makePluginCa(dir, { name: 'beta', intermediateKey: 'rsa:2048' });
    const folder = path.join(dir, 'cacerts');
    writeCacerts(folder, a);
    const logs = captureLog('trace');
    const bundles: string[] = [];
    const ca = await MeshdAuthority.start({ mode: 'plugin', store: new FolderRootStore(folder, 50), log: logs.log, checkIntervalMs: 0, onRootsChanged: (p) => bundles.push(p) });
    try {
      assert.deepEqual(fingerprints(ca.rootBundlePem()), fingerprints(a.rootCertPem));
      const first = (await ca.sign({ csrPem: csr, identities: [ID], ttlSeconds: 3600 })).certChainPem;
      assert.equal(first.length, 3, 'leaf, intermediate, root');
      assert.deepEqual(fingerprints(first[1] as string), fingerprints(a.caCertPem));
      assert.deepEqual(fingerprints(first[2] as string), fingerprints(a.rootCertPem));
      let [ok, out] = verify(dir, { root: a.rootCertPem, untrusted: first[1], leaf: first[0] as string });
      assert.ok(ok, out);
      [ok] = verify(dir, { root: a.rootCertPem, leaf: first[0] as string });
      assert.ok(!ok, 'the intermediate is needed: the leaf is signed by it, not by the root');
      assert.match(x509Text(dir, first[0] as string), /Signature Algorithm: ecdsa-with-SHA256/);

      // The operator replaces the files one by one; the watcher picks the new CA up.
      writeCacerts(folder, b);
      await waitFor(() => ca.rootBundlePem() === new X509Certificate(b.rootCertPem).toString(), 'the new plug-in root');
      const second = (await ca.sign({ csrPem: csr, identities: [ID], ttlSeconds: 3600 })).certChainPem;
      [ok, out] = verify(dir, { root: b.rootCertPem, untrusted: second[1], leaf: second[0] as string });
      assert.ok(ok, out);
      [ok] = verify(dir, { root: a.rootCertPem, untrusted: a.caCertPem + (second[1] as string), leaf: second[0] as string });
      assert.ok(!ok, 'the old root no longer verifies new certificates');
      assert.deepEqual(bundles.map(fingerprints), [fingerprints(a.rootCertPem), fingerprints(b.rootCertPem)]);

      // Broken material (beta's certificate with alpha's key) is refused; beta keeps signing.
      fs.writeFileSync(path.join(folder, 'ca-key.pem'), a.caKeyPem);
      await assert.rejects(ca.check(), (e: Error) => {
        assert.match(e.message, /ca-key\.pem does not match ca-cert\.pem/);
        for (const f of keyFragments(a.caKeyPem, b.caKeyPem)) assert.ok(!e.message.includes(f));
        return true;
      });
      const third = (await ca.sign({ csrPem: csr, identities: [ID], ttlSeconds: 3600 })).certChainPem;
      assert.ok(verify(dir, { root: b.rootCertPem, untrusted: third[1], leaf: third[0] as string })[0]);
      const logText = JSON.stringify(logs.records());
      assert.match(logText, /CA material refused/);
      assert.doesNotMatch(logText, /PRIVATE KEY/);
      for (const f of keyFragments(a.caKeyPem, b.caKeyPem)) assert.ok(!logText.includes(f), 'a key fragment was logged');
    } finally {
      ca.close();
    }
  });

  it('refuses to start without cacerts, or with a cert-chain.pem that does not chain', async () => {
    await assert.rejects(MeshdAuthority.start({ mode: 'plugin', store: new FolderRootStore(path.join(dir, 'none')), log: quietLog }), /no plug-in CA/);
    const a = makePluginCa(dir, { name: 'gamma', intermediateKey: 'P-256' });
    const other = makePluginCa(dir, { name: 'delta', intermediateKey: 'P-256' });
    const folder = path.join(dir, 'cacerts-bad');
    writeCacerts(folder, { ...a, rootCertPem: other.rootCertPem, certChainPem: a.caCertPem });
    await assert.rejects(MeshdAuthority.start({ mode: 'plugin', store: new FolderRootStore(folder), log: quietLog }), /does not chain to a root in root-cert\.pem/);
  });
});

describe('self-signed root', { timeout: 60_000 }, () => {
  it('is created once (O=<trust domain>, CA, 10 years), persisted with a 0600 key, and reloaded after a restart', async () => {
    const folder = path.join(dir, 'istio-ca-secret');
    const first = await MeshdAuthority.start({ mode: 'self-signed', store: new FolderRootStore(folder), log: quietLog, checkIntervalMs: 0 });
    const root = new X509Certificate(first.rootBundlePem());
    const issued = (await first.sign({ csrPem: csr, identities: [ID], ttlSeconds: 3600 })).certChainPem[0] as string;
    first.close();
    assert.equal(root.subject, 'O=cluster.local');
    assert.ok(root.ca);
    const years = (Date.parse(root.validTo) - Date.parse(root.validFrom)) / (365.25 * 86_400_000);
    assert.ok(years > 9.9 && years < 10.1, `lifetime ${years} years`);
    assert.equal(fs.statSync(path.join(folder, 'ca-key.pem')).mode & 0o777, 0o600);
    for (const f of ['ca-cert.pem', 'root-cert.pem', 'cert-chain.pem']) assert.ok(fs.existsSync(path.join(folder, f)), f);

    const again = await MeshdAuthority.start({ mode: 'self-signed', store: new FolderRootStore(folder), log: quietLog, checkIntervalMs: 0 });
    try {
      assert.equal(again.rootBundlePem(), first.rootBundlePem(), 'the same root after a restart');
      assert.ok(verify(dir, { root: again.rootBundlePem(), leaf: issued })[0], 'certificates from before the restart still verify');
    } finally {
      again.close();
    }
  });

  it('rotates before expiry: new certificates from the new root, both roots trusted during the overlap, then only the new one', async () => {
    const t0 = Math.floor(Date.now() / 1000) * 1000;
    let clock = new Date(t0);
    const at = (s: number): Date => new Date(t0 + s * 1000);
    const bundles: string[] = [];
    const store = new FolderRootStore(path.join(dir, 'rotating'));
    // Root lives 1000 s (+10 s backdate); rotation when half is left (t0+495 s); overlap 200 s.
    const opts = {
      mode: 'self-signed',
      store,
      log: quietLog,
      checkIntervalMs: 0,
      now: () => clock,
      rootTtlSeconds: 1000,
      rootGracePercent: 50,
      rootOverlapSeconds: 200,
      backdateSeconds: 10,
    } as const;
    const ca = await MeshdAuthority.start({ ...opts, onRootsChanged: (p) => bundles.push(p) });
    try {
      const rootA = ca.rootBundlePem();
      const oldLeaf = (await ca.sign({ csrPem: csr, identities: [ID], ttlSeconds: 900 })).certChainPem[0] as string;

      clock = at(300);
      await ca.check();
      assert.equal(ca.rootBundlePem(), rootA, 'not due yet');

      clock = at(600);
      await ca.check();
      const during = certsFromPem(ca.rootBundlePem());
      assert.equal(during.length, 2, 'old and new root during the overlap');
      const [rootB, stillA] = during as [X509Certificate, X509Certificate];
      assert.equal(stillA.toString(), rootA);
      assert.notEqual(rootB.fingerprint256, stillA.fingerprint256);
      assert.equal(ca.signingCertPem(), rootB.toString(), 'the new root signs');
      const newChain = (await ca.sign({ csrPem: csr, identities: [ID], ttlSeconds: 300 })).certChainPem;
      assert.equal(newChain[1], rootB.toString());
      const newLeaf = newChain[0] as string;
      assert.ok(new X509Certificate(newLeaf).verify(rootB.publicKey) && !new X509Certificate(newLeaf).verify(stillA.publicKey));
      for (const leaf of [oldLeaf, newLeaf]) {
        const [ok, out] = verify(dir, { root: ca.rootBundlePem(), leaf, atTime: (t0 + 600_000) / 1000 });
        assert.ok(ok, out);
      }

      // A restart during the overlap reads the same bundle back.
      const restarted = await MeshdAuthority.start(opts);
      assert.equal(restarted.rootBundlePem(), ca.rootBundlePem());
      restarted.close();

      clock = at(801);
      await ca.check();
      assert.deepEqual(fingerprints(ca.rootBundlePem()), [rootB.fingerprint256], 'only the new root after the overlap');
      const [newOk, newOut] = verify(dir, { root: ca.rootBundlePem(), leaf: newLeaf, atTime: (t0 + 801_000) / 1000 });
      assert.ok(newOk, newOut);
      const [ok] = verify(dir, { root: ca.rootBundlePem(), leaf: oldLeaf, atTime: (t0 + 801_000) / 1000 });
      assert.ok(!ok, 'a certificate of the old root (still within its own validity) is no longer trusted');
      assert.deepEqual(
        bundles.map((b) => certsFromPem(b).length),
        [1, 2, 1],
      );
    } finally {
      ca.close();
    }
  });
});

describe('key files and folder permissions', { timeout: 60_000 }, () => {
  it('never writes a key through a symlink planted at the temporary name', async () => {
    const folder = path.join(dir, 'planted');
    fs.mkdirSync(folder, { mode: 0o700 });
    const victim = path.join(dir, 'victim.txt');
    fs.writeFileSync(victim, 'untouched\n', { mode: 0o644 });
    // Where a writer that reuses a predictable temporary name would write (and chmod) the key.
    const planted = path.join(folder, `ca-key.pem.tmp-${process.pid}`);
    fs.symlinkSync(victim, planted);
    const ca = await MeshdAuthority.start({ mode: 'self-signed', store: new FolderRootStore(folder), log: quietLog, checkIntervalMs: 0 });
    ca.close();
    assert.equal(fs.readFileSync(victim, 'utf8'), 'untouched\n', 'the key went through the symlink');
    assert.equal(fs.statSync(victim).mode & 0o777, 0o644, 'the symlink target was chmod-ed');
    const key = path.join(folder, 'ca-key.pem');
    assert.ok(fs.lstatSync(key).isFile(), 'ca-key.pem is a regular file');
    assert.equal(fs.statSync(key).mode & 0o777, 0o600);
    assert.match(fs.readFileSync(key, 'utf8'), /PRIVATE KEY/);
    assert.equal(fs.readlinkSync(planted), victim, 'the planted link is left alone');
    assert.deepEqual(
      fs.readdirSync(folder).filter((f) => f.includes('.tmp-') && path.join(folder, f) !== planted),
      [],
      'no temporary files left',
    );
  });

  const meshdCa = (o: { caDir?: string; cacertsDir?: string }, log: ReturnType<typeof captureLog>['log']): MeshdCa =>
    new MeshdCa({
      trustDomain: 'cluster.local',
      namespace: 'istio-system',
      domain: 'cluster.local',
      mayWrite: () => true,
      defaultTtlSeconds: 3600,
      maxTtlSeconds: 86_400,
      serving: false,
      registry: new Registry(),
      log,
      ...o,
    });
  const warnings = (logs: ReturnType<typeof captureLog>, re: RegExp): Array<Record<string, unknown>> =>
    logs.records().filter((r) => r['level'] === 40 && re.test(String(r['msg'])));

  it('makes an existing --ca-dir open to others 0700 at start, and says so; a private one is left as it is', async () => {
    const folder = path.join(dir, 'open-ca-dir');
    fs.mkdirSync(folder);
    fs.chmodSync(folder, 0o755);
    const logs = captureLog('info');
    const ca = meshdCa({ caDir: folder }, logs.log);
    await ca.ready();
    ca.close();
    assert.equal(fs.statSync(folder).mode & 0o777, 0o700);
    const w = warnings(logs, /CA folder was open to group or others/);
    assert.equal(w.length, 1, JSON.stringify(logs.records()));
    assert.equal(w[0]?.['mode'], '0755');

    const again = captureLog('info');
    const second = meshdCa({ caDir: folder }, again.log);
    await second.ready();
    second.close();
    assert.equal(warnings(again, /CA folder/).length, 0, 'already private: nothing to say');
  });

  it('warns once at start about a plug-in ca-key.pem that group or others can read', async () => {
    const a = makePluginCa(dir, { name: 'perm-a', intermediateKey: 'P-256' });
    const b = makePluginCa(dir, { name: 'perm-b', intermediateKey: 'P-256' });
    const folder = path.join(dir, 'cacerts-open');
    writeCacerts(folder, a);
    fs.chmodSync(path.join(folder, 'ca-key.pem'), 0o644);
    const logs = captureLog('info');
    const ca = meshdCa({ cacertsDir: folder }, logs.log);
    try {
      await ca.ready();
      // A replaced CA is read without another warning.
      writeCacerts(folder, b);
      fs.chmodSync(path.join(folder, 'ca-key.pem'), 0o640);
      await waitFor(() => ca.authority.rootBundlePem() === new X509Certificate(b.rootCertPem).toString(), 'the replaced plug-in CA', 20_000);
    } finally {
      ca.close();
    }
    const w = warnings(logs, /plug-in CA key is readable by group or others/);
    assert.equal(w.length, 1, JSON.stringify(logs.records()));
    assert.equal(w[0]?.['mode'], '0644');
    assert.equal(fs.statSync(path.join(folder, 'ca-key.pem')).mode & 0o777, 0o640, "the operator's file is not changed");
    const logText = JSON.stringify(logs.records());
    for (const f of keyFragments(a.caKeyPem, b.caKeyPem)) assert.ok(!logText.includes(f), 'a key fragment was logged');

    const quiet = path.join(dir, 'cacerts-private');
    writeCacerts(quiet, a);
    const logs2 = captureLog('info');
    const ok = meshdCa({ cacertsDir: quiet }, logs2.log);
    await ok.ready();
    ok.close();
    assert.equal(warnings(logs2, /plug-in CA key/).length, 0, 'a 0600 key is not warned about');
  });
});

describe('istio-ca-secret in Kubernetes', { timeout: 60_000 }, () => {
  it('only the leader creates and rotates it; a follower waits for it and follows the rotation; a create race keeps one root', async () => {
    const server = await startKubeApiServer();
    const kc = loadKubeConfig({ kubeconfig: server.kubeconfigPath });
    const store = (name?: string): KubeSecretRootStore => new KubeSecretRootStore({ kubeConfig: kc, namespace: 'istio-system', name });
    const t0 = Date.now();
    let clock = new Date(t0);
    const timing = { checkIntervalMs: 0, now: () => clock, rootTtlSeconds: 1000, rootGracePercent: 50, backdateSeconds: 0, log: quietLog } as const;
    const abort = new AbortController();
    const started: MeshdAuthority[] = [];
    try {
      const followerP = MeshdAuthority.start({ ...timing, mode: 'self-signed', store: store(), mayWrite: () => false, waitPollMs: 50, signal: abort.signal });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await store().load(), undefined, 'a follower never writes the root');
      const leader = await MeshdAuthority.start({ ...timing, mode: 'self-signed', store: store(), mayWrite: () => true });
      started.push(leader);
      const follower = await followerP;
      started.push(follower);
      assert.equal(follower.rootBundlePem(), leader.rootBundlePem());

      const secret = await kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name: 'istio-ca-secret', namespace: 'istio-system' });
      assert.equal(secret.type, CA_SECRET_TYPE);
      assert.deepEqual(Object.keys(secret.data ?? {}).sort(), ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem']);

      clock = new Date(t0 + 600_000);
      await follower.check();
      assert.equal(certsFromPem(follower.rootBundlePem()).length, 1, 'a follower does not rotate');
      await leader.check();
      assert.equal(certsFromPem(leader.rootBundlePem()).length, 2, 'the leader rotated');
      await follower.check();
      assert.equal(follower.rootBundlePem(), leader.rootBundlePem(), 'the follower reads the rotated root');
      assert.equal(follower.signingCertPem(), leader.signingCertPem());

      // Two replicas that may both write race to create another Secret: both find none (a barrier holds
      // each first load until both have read), both create, one gets 409 and reads the other's.
      let arrived = 0;
      let release: () => void = () => undefined;
      const barrier = new Promise<void>((r) => (release = r));
      const racing = (): RootStore => {
        const inner = store('race');
        let first = true;
        return {
          description: inner.description,
          save: (m) => inner.save(m),
          load: async () => {
            const m = await inner.load();
            if (first) {
              first = false;
              if (++arrived === 2) release();
              await barrier;
            }
            return m;
          },
        };
      };
      const racers = await Promise.all([racing(), racing()].map((s) => MeshdAuthority.start({ ...timing, mode: 'self-signed', store: s, mayWrite: () => true })));
      started.push(...racers);
      assert.equal(racers[0]?.rootBundlePem(), racers[1]?.rootBundlePem());
      const creates = server.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/secrets'));
      assert.deepEqual(
        creates
          .map((r) => r.status)
          .slice(-2)
          .sort(),
        [201, 409],
      );
    } finally {
      abort.abort();
      for (const ca of started) ca.close();
      await server.close();
    }
  });
});
