/**
 * The web UI (`/ui`) in a real headless Chromium: meshd runs bookinfo plus an AuthorizationPolicy
 * and an invalid VirtualService, two real ADS clients are connected (one NACKs its clusters), and
 * the page must show both proxies, the NACK, the invalid object with its field path, the routing
 * rules and the access matrix, and a picked proxy's clusters. The screenshot is checked for
 * content: the NACK's red is drawn in the proxies section.
 *
 * Chromium comes from Debian's `chromium` package (CI installs it); without it the test is
 * skipped, except under CI=true, where it fails.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { type Browser, type Page, chromium } from 'playwright-core';
import { type MeshdHandle, startMeshd } from '../src/meshd';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient } from './helpers/ads-client';

const ROOT = path.join(__dirname, '..');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
if (!HAVE_CHROMIUM && process.env['CI'] === 'true') throw new Error(`Chromium is required under CI=true and was not found at ${CHROMIUM}`);
const T = { timeout: 90_000, skip: HAVE_CHROMIUM ? false : `no Chromium at ${CHROMIUM}` };

const PRODUCTPAGE = 'sidecar~127.0.0.10~productpage-v1.default~default.svc.cluster.local';
const RATINGS = 'sidecar~127.0.0.11~ratings-v1.default~default.svc.cluster.local';
const protos = new EnvoyProtos();

const EXTRA = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: reviews-only-from-productpage
  namespace: default
spec:
  selector:
    matchLabels:
      app: reviews
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: broken-weights
  namespace: default
spec:
  hosts: [details]
  http:
  - route:
    - destination: {host: details}
      weight: -5
`;

let dir: string;
let meshd: MeshdHandle;
let browser: Browser;
let page: Page;
const clients: AdsClient[] = [];

before(async () => {
  if (!HAVE_CHROMIUM) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-ui-'));
  fs.cpSync(path.join(ROOT, 'examples', 'bookinfo'), dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'ui-extra.yaml'), EXTRA);
  meshd = await startMeshd({
    configDir: dir,
    xdsPort: 0,
    secureXdsPort: -1,
    debugPort: 0,
    monitoringPort: -1,
    webhookPort: -1,
    logger: pino({ level: 'silent' }),
    debugEndpointAuth: false,
  });
  const pp = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: PRODUCTPAGE, metadata: { NAMESPACE: 'default' } });
  clients.push(pp);
  await pp.subscribe(TypeUrl.Cluster);
  await pp.subscribe(TypeUrl.Listener);
  await pp.subscribe(TypeUrl.Route, ['9080']);
  const ratings = new AdsClient(protos, `127.0.0.1:${meshd.xdsPort}`, { id: RATINGS, metadata: { NAMESPACE: 'default' } });
  clients.push(ratings);
  ratings.send({ type_url: TypeUrl.Cluster });
  ratings.nack(await ratings.next(TypeUrl.Cluster), 'cluster outbound|9080||reviews: forced rejection');
  for (;;) {
    const syncz = await (await fetch(`http://127.0.0.1:${meshd.debugPort}/debug/syncz`)).text();
    if (syncz.includes('forced rejection')) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--disable-gpu'] });
  page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  await page.goto(`http://127.0.0.1:${meshd.debugPort}/ui`);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 30_000 });
});

after(async () => {
  await browser?.close();
  for (const c of clients) c.close();
  await meshd?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('the UI lists connected proxies with their sync state and shows a NACK with its message', T, async () => {
  const rows = await page.$$eval('#proxies tr.proxy', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
  const byId = new Map(rows.map((r) => [r[0], r]));
  assert.deepEqual([...byId.keys()].sort(), [PRODUCTPAGE, RATINGS].sort());
  // PROXY, TYPE, NAMESPACE, CDS, LDS, EDS, RDS, SDS, NACK
  assert.deepEqual(byId.get(PRODUCTPAGE)?.slice(1, 5), ['sidecar', 'default', 'SYNCED', 'SYNCED']);
  assert.equal(byId.get(RATINGS)?.[3], 'NACKED');
  assert.match(byId.get(RATINGS)?.[8] ?? '', /CDS: cluster outbound\|9080\|\|reviews: forced rejection/);
});

test('the UI shows an invalid object with its field path, and serves the rest', T, async () => {
  const items = await page.$$eval('#errors li.config-error', (lis) => lis.map((li) => li.textContent ?? ''));
  const broken = items.find((t) => t.includes('default/broken-weights'));
  assert.ok(broken, `no error for broken-weights in ${JSON.stringify(items)}`);
  assert.match(broken, /spec\.http\[0\]\.route\[0\]\.weight: /);
  // The valid VirtualServices are still drawn as routing rules.
  const routes = await page.$$eval('#graph tr.route', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
  assert.ok(
    routes.some((r) => r[1] === 'reviews.default (v2)' && r[3] === 'default/reviews http[0]' && /headers end-user/.test(r[4] ?? '')),
    JSON.stringify(routes),
  );
  assert.ok(!routes.some((r) => r[3]?.startsWith('default/broken-weights')), 'the invalid VirtualService must not be drawn');
  assert.ok((await page.$$('#graph svg circle.node')).length >= 4);
});

test('the access matrix says who may call whom by AuthorizationPolicy', T, async () => {
  const cells = await page.$$eval('#access tr', (trs) => trs.map((tr) => [...tr.children].map((c) => [c.textContent ?? '', c.getAttribute('title') ?? ''])));
  const header = (cells[0] ?? []).map(([t]) => t);
  const col = header.indexOf('reviews.default');
  assert.ok(col > 0, JSON.stringify(header));
  const row = (caller: string): string[][] | undefined => cells.find((r) => r[0]?.[0] === caller);
  assert.deepEqual(row('productpage.default')?.[col], ['allow', 'default/reviews-only-from-productpage (ALLOW)']);
  assert.deepEqual(row('ratings.default')?.[col], ['deny', 'no ALLOW policy matches the caller']);
  // No policy selects ratings: everyone may call it.
  const ratingsCol = header.indexOf('ratings.default');
  assert.equal(row('reviews.default')?.[ratingsCol]?.[0], 'allow');
});

test('picking a proxy shows the config meshd serves it', T, async () => {
  await page.click(`#proxies tr.proxy[data-proxy="${PRODUCTPAGE}"]`);
  await page.waitForFunction("document.querySelectorAll('#proxy li').length > 0", undefined, { timeout: 15_000 });
  const names = await page.$$eval('#proxy li', (lis) => lis.map((li) => li.textContent ?? ''));
  assert.ok(names.includes('outbound|9080|v1|reviews.default.svc.cluster.local'), JSON.stringify(names));
  assert.ok(names.includes('virtualOutbound'), JSON.stringify(names));
});

test('the route simulator in the proxy panel: the form asks /debug/route and shows the route, the cluster and the RBAC step as text', T, async () => {
  await page.click(`#proxies tr.proxy[data-proxy="${PRODUCTPAGE}"]`);
  await page.waitForSelector('#route-sim:not([hidden])', { timeout: 15_000 });
  const run = async (to: string, p: string, method: string, headers: string): Promise<{ text: string; status: string }> => {
    await page.evaluate("document.getElementById('route-result').removeAttribute('data-status')");
    await page.fill('#route-form input[name=to]', to);
    await page.fill('#route-form input[name=path]', p);
    await page.fill('#route-form input[name=method]', method);
    await page.fill('#route-form textarea[name=headers]', headers);
    await page.click('#route-form button[type=submit]');
    await page.waitForSelector('#route-result[data-status]', { timeout: 15_000 });
    return {
      text: (await page.textContent('#route-result')) ?? '',
      status: (await page.getAttribute('#route-result', 'data-status')) ?? '',
    };
  };
  // bookinfo's reviews VirtualService: end-user jason goes to v2, everyone else to v1.
  const jason = await run('reviews:9080', '/reviews/1', 'GET', 'end-user=jason');
  assert.equal(jason.status, '200', jason.text);
  assert.match(jason.text, /^Route: +#\d+ matching prefix \/, header end-user exact jason, from VirtualService reviews\.default$/m);
  assert.match(jason.text, /^Cluster: +outbound\|9080\|v2\|reviews\.default\.svc\.cluster\.local \(100%\)/m);
  assert.match(jason.text, /^RBAC: +destination proxy not connected$/m);
  const other = await run('reviews:9080', '/reviews/1', 'GET', 'end-user=<img src=x onerror="document.title=1">');
  assert.match(other.text, /^Cluster: +outbound\|9080\|v1\|reviews\.default\.svc\.cluster\.local \(100%\)/m);
  // Values go into the page as text: the header shows literally, and no element was made of it.
  assert.ok(other.text.includes('end-user: <img src=x onerror="document.title=1">'), other.text);
  assert.equal((await page.$$('#route-result *')).length, 0);
  const bad = await run('reviews', '/', 'GET', '');
  assert.equal(bad.status, '400');
  assert.match(bad.text, /^to: must be host:port/);
  // The README's screenshot shows a simulated request, not the refusal above.
  await run('reviews:9080', '/reviews/1', 'GET', 'end-user=jason');
});

test('the screenshot shows the NACK in red in the proxies section', T, async () => {
  const shot = await page.locator('#proxies').screenshot();
  if (process.env['UPDATE_SCREENSHOT'] === '1') await page.screenshot({ path: path.join(ROOT, 'docs', 'ui.png'), fullPage: true });
  // Count pixels of the NACK colour (#cf222e), decoding the PNG in a blank page's canvas (the UI's
  // content security policy rightly refuses data: images).
  const blank = await browser.newPage();
  // (Browser-side code as a string: the test compiles without the DOM's types.)
  const red = await blank.evaluate<number>(`(async () => {
    const img = new Image();
    img.src = 'data:image/png;base64,${shot.toString('base64')}';
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width;
    c.height = img.height;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - 0xcf) < 24 && Math.abs(d[i + 1] - 0x22) < 24 && Math.abs(d[i + 2] - 0x2e) < 24) n++;
    return n;
  })()`);
  await blank.close();
  assert.ok(red > 50, `only ${red} pixels of the NACK colour in the proxies section`);
});
