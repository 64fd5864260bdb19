/**
 * The webhooks' serving certificate comes from meshd's own CA, as istiod's does: a real https
 * request that trusts only the CA's root reaches the webhook under istiod's Service names and the
 * custom hosts (`--custom-host`, default `$ISTIOD_CUSTOM_HOST`), the caBundle meshd reports is
 * that root, and the certificate is re-issued before it expires.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import pino from 'pino';
import { withDefaults } from '../src/config/options';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { makeCa } from './helpers/certs';
import { portArgs } from './helpers/meshd-process';

const ROOT = path.join(__dirname, '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-webhook-ca-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Served {
  status: number;
  leaf: X509Certificate;
  issuer: X509Certificate;
}

/** GET /ready over https, trusting only `ca`, asking for `servername`. */
function get(port: number, ca: string, servername: string): Promise<Served> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/ready', method: 'GET', ca, servername, agent: false, timeout: 10_000 }, (res) => {
      const peer = (res.socket as TLSSocket).getPeerCertificate(true);
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, leaf: new X509Certificate(peer.raw), issuer: new X509Certificate(peer.issuerCertificate.raw) }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('startMeshd', () => {
  let meshd: MeshdHandle;
  before(async () => {
    meshd = await startMeshd({
      configDir: path.join(ROOT, 'examples', 'bookinfo'),
      xdsPort: 0,
      secureXdsPort: -1,
      debugPort: 0,
      monitoringPort: -1,
      webhookPort: 0,
      podNamespace: 'mesh-system',
      customHosts: ['webhook.example.com', 'istiod.corp.example'],
      caDir: path.join(dir, 'ca'),
      servingCertTtlSeconds: 4,
      logger: pino({ level: 'silent' }),
    });
    await meshd.caReady();
  });
  after(async () => {
    await meshd?.close();
  });

  test('the webhook chain verifies against the mesh root for istiod.<ns>.svc and the custom hosts; caBundle is that root', { timeout: 30_000 }, async () => {
    const bundle = await until('the webhook certificate', () => meshd.webhookCaPem());
    const root = meshd.caRootPem();
    assert.equal(bundle, root, 'the caBundle is the CA root bundle');
    const rootCert = new X509Certificate(root);
    for (const name of ['istiod.mesh-system.svc', 'istiod.mesh-system.svc.cluster.local', 'istiod.mesh-system', 'istiod', 'webhook.example.com', 'istiod.corp.example']) {
      const r = await get(meshd.webhookPort, root, name);
      assert.equal(r.status, 200, name);
      assert.equal(r.issuer.fingerprint256, rootCert.fingerprint256, `${name}: issued by the mesh CA`);
      assert.ok(r.leaf.verify(rootCert.publicKey));
    }
    const { leaf } = await get(meshd.webhookPort, root, 'webhook.example.com');
    assert.equal(
      leaf.subjectAltName
        ?.split(', ')
        .filter((n) => n.startsWith('URI:'))
        .join(),
      'URI:spiffe://cluster.local/ns/mesh-system/sa/istiod',
    );
    await assert.rejects(get(meshd.webhookPort, root, 'other.example.com'), /does not match|altnames/i);
    // A client trusting another CA refuses it.
    await assert.rejects(get(meshd.webhookPort, makeCa().cert, 'istiod.mesh-system.svc'), /unable to (get|verify)/i);
  });

  test('the webhook certificate is re-issued at half its lifetime and new connections get it', { timeout: 30_000 }, async () => {
    const root = meshd.caRootPem();
    const first = (await get(meshd.webhookPort, root, 'istiod.mesh-system.svc')).leaf;
    const second = await until('a renewed certificate', async () => {
      const r = await get(meshd.webhookPort, root, 'istiod.mesh-system.svc');
      return r.leaf.serialNumber !== first.serialNumber ? r.leaf : undefined;
    });
    assert.ok(Date.parse(second.validTo) > Date.parse(first.validTo));
    assert.ok(!second.publicKey.export({ type: 'spki', format: 'der' }).equals(first.publicKey.export({ type: 'spki', format: 'der' })), 'a fresh key');
  });
});

describe('command line', () => {
  const MAIN = path.join(ROOT, 'src', 'main.ts');

  test('--custom-host defaults to $ISTIOD_CUSTOM_HOST (comma-separated); the webhook serves those names from the mesh CA', { timeout: 60_000 }, async () => {
    const caDir = path.join(dir, 'cli-ca');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', MAIN, '--config-dir', 'examples/bookinfo', ...portArgs({ webhook: true }), '--ca-dir', caDir, '--log-level', 'warn'],
      {
        cwd: ROOT,
        env: { ...process.env, ISTIOD_CUSTOM_HOST: 'hooks.example.com, Other.Example.org,' },
      },
    );
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const port = Number((await until('the listening line', () => /webhooks https:\/\/127\.0\.0\.1:(\d+)/.exec(out) ?? undefined, 30_000))[1]);
      const root = await until('the root', () => fs.readFileSync(path.join(caDir, 'root-cert.pem'), 'utf8'));
      for (const name of ['hooks.example.com', 'other.example.org', 'istiod.istio-system.svc']) {
        const r = await until(`a certificate for ${name}`, () => get(port, root, name));
        assert.equal(r.status, 200, name);
      }
      await assert.rejects(get(port, root, 'example.org'), /does not match|altnames/i);
    } finally {
      child.kill('SIGTERM');
      assert.equal(await exited, 0, out);
    }
  });

  test('a custom host that is not a DNS name is refused, naming --custom-host', { timeout: 30_000 }, () => {
    assert.throws(() => withDefaults({ configDir: 'x', customHosts: ['bad name'] }), /^Error: --custom-host: "bad name" is not a DNS name/);
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', MAIN, '--config-dir', 'examples/bookinfo', ...portArgs({ webhook: true }), '--custom-host', 'ok.example.com,bad_host!'],
      { cwd: ROOT, encoding: 'utf8', timeout: 25_000 },
    );
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /--custom-host: "bad_host!" is not a DNS name/);
  });
});
