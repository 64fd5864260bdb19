/**
 * meshd's live web UI (`/ui` on the debug port): one static page, no build step, no external
 * assets. It polls `/ui/data` and draws connected proxies with their sync state and NACKs, config
 * errors with field paths, the service graph from config and the access matrix, and a proxy's
 * config (from `/debug/config_dump`) when one is picked, with the route simulator for it (a form
 * that asks `/debug/route`). Every value from config is put into the page as text, never as markup.
 */

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2733; background: #f6f7f9; }
header { background: #1d2733; color: #fff; padding: 10px 18px; display: flex; gap: 24px; align-items: baseline; }
header h1 { font-size: 18px; margin: 0; }
main { padding: 12px 18px; display: grid; gap: 16px; }
section { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 10px 14px; }
h2 { font-size: 15px; margin: 0 0 8px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eef0f3; vertical-align: top; }
th { font-weight: 600; color: #4a5563; }
tr.proxy { cursor: pointer; }
tr.proxy:hover, tr.proxy.picked { background: #eef4ff; }
.SYNCED { color: #1a7f37; } .STALE { color: #9a6700; } .NACKED { color: #cf222e; font-weight: 600; } .NOT_SENT { color: #8c959f; }
.allow { background: #dafbe1; } .deny { background: #ffebe9; } .conditional { background: #fff8c5; }
.path { font-family: ui-monospace, monospace; color: #cf222e; }
.muted { color: #6e7781; }
#route-form { display: flex; flex-wrap: wrap; gap: 10px; align-items: end; }
#route-form label { display: flex; flex-direction: column; font-size: 12px; color: #4a5563; }
#route-result { white-space: pre-wrap; background: #f6f8fa; padding: 6px 8px; }
code, .mono { font-family: ui-monospace, monospace; font-size: 12px; }
svg text { font: 11px system-ui, sans-serif; }
`;

// The page's script, as plain JavaScript (it runs in the browser, not in meshd).
const SCRIPT = `
'use strict';
const TYPES = ['CDS', 'LDS', 'EDS', 'RDS', 'SDS'];
let picked = null;
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else if (k === 'onclick') e.onclick = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
function svgEl(tag, attrs, text) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}
function replace(id, ...kids) { const n = document.getElementById(id); n.replaceChildren(...kids); }
function short(host) { const i = host.indexOf('.svc.'); return i > 0 ? host.slice(0, i) : host; }

function drawProxies(proxies) {
  if (proxies.length === 0) { replace('proxies', el('p', { class: 'muted' }, 'No proxy is connected.')); return; }
  const head = el('tr', {}, el('th', {}, 'PROXY'), el('th', {}, 'TYPE'), el('th', {}, 'NAMESPACE'), ...TYPES.map((t) => el('th', {}, t)), el('th', {}, 'NACK'));
  const rows = proxies.map((p) => {
    const nacks = TYPES.map((t) => p.types[t] && p.types[t].last_nack ? t + ': ' + p.types[t].last_nack.message : null).filter(Boolean);
    const r = el('tr', { class: 'proxy' + (p.proxy === picked ? ' picked' : ''), 'data-proxy': p.proxy, onclick: () => pick(p.proxy) },
      el('td', { class: 'mono' }, p.proxy), el('td', {}, p.proxy_type || ''), el('td', {}, p.namespace || ''),
      ...TYPES.map((t) => { const s = p.types[t] ? p.types[t].status : 'NOT SENT'; return el('td', { class: s.replace(' ', '_') }, s); }),
      el('td', { class: 'NACKED' }, nacks.join('; ')));
    return r;
  });
  replace('proxies', el('table', {}, head, ...rows));
}

function drawErrors(errors) {
  if (errors.length === 0) { replace('errors', el('p', { class: 'muted' }, 'No config errors.')); return; }
  const items = errors.map((e) => {
    const what = [e.kind, (e.namespace ? e.namespace + '/' : '') + (e.name || '')].filter(Boolean).join(' ');
    return el('li', { class: 'config-error' }, el('strong', {}, what || e.source), ' ', el('span', { class: 'muted' }, e.source),
      el('ul', {}, ...e.errors.map((f) => el('li', {}, el('span', { class: 'path' }, f.path || '(object)'), ': ', f.message))));
  });
  replace('errors', el('ul', {}, ...items));
}

function drawGraph(g) {
  const used = new Set(); for (const r of g.routes) { used.add(r.from); used.add(r.to); }
  const nodes = g.nodes.filter((n) => n.kind === 'Service' || used.has(n.id)).slice(0, 60);
  const W = 760, H = Math.max(340, 60 + nodes.length * 14), cx = W / 2, cy = H / 2, R = Math.min(cx, cy) - 70;
  const pos = new Map();
  nodes.forEach((n, i) => { const a = (2 * Math.PI * i) / Math.max(1, nodes.length) - Math.PI / 2; pos.set(n.id, [cx + R * Math.cos(a), cy + R * Math.sin(a)]); });
  const svg = svgEl('svg', { width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'service graph' });
  const defs = svgEl('defs', {});
  const marker = svgEl('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 18, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
  marker.append(svgEl('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#0969da' })); defs.append(marker); svg.append(defs);
  // Who may call whom: grey for allowed, amber for conditional, red dashed for denied.
  const COLOURS = { allow: '#afb8c1', conditional: '#bf8700', deny: '#cf222e' };
  for (const a of g.access) {
    const p = pos.get(a.from), q = pos.get(a.to);
    if (!p || !q) continue;
    svg.append(svgEl('line', { x1: p[0], y1: p[1], x2: q[0], y2: q[1], stroke: COLOURS[a.decision], 'stroke-width': 1, 'stroke-dasharray': a.decision === 'deny' ? '4 3' : '', 'marker-end': 'url(#arrow)', class: 'access-edge ' + a.decision }));
  }
  // Routing rules: blue edges between services, each labelled with its subsets and weights (or the
  // VirtualService); rules that stay on their own host are listed under the node.
  const labels = new Map(), own = new Map();
  for (const r of g.routes) {
    if (!pos.has(r.from) || !pos.has(r.to)) continue;
    const label = ((r.subset || '') + (r.weight !== undefined ? ' ' + r.weight + '%' : '')).trim() || r.virtualService;
    if (r.from === r.to) { own.set(r.from, [...(own.get(r.from) || []), label]); continue; }
    const key = r.from + '>' + r.to;
    labels.set(key, [...(labels.get(key) || []), label]);
  }
  for (const [key, ls] of labels) {
    const [f, t] = key.split('>'); const a = pos.get(f), b = pos.get(t);
    svg.append(svgEl('line', { x1: a[0], y1: a[1], x2: b[0], y2: b[1], stroke: '#0969da', 'stroke-width': 2, 'marker-end': 'url(#arrow)', class: 'route-edge' }));
    svg.append(svgEl('text', { x: (a[0] + b[0]) / 2, y: (a[1] + b[1]) / 2 - 4, fill: '#0969da', 'text-anchor': 'middle' }, [...new Set(ls)].join(', ')));
  }
  for (const [id, ls] of own) {
    const [x, y] = pos.get(id);
    svg.append(svgEl('text', { x: x, y: y + 35, fill: '#0969da', 'text-anchor': 'middle' }, '→ ' + [...new Set(ls)].join(', ')));
  }
  for (const n of nodes) {
    const [x, y] = pos.get(n.id);
    svg.append(svgEl('circle', { cx: x, cy: y, r: 9, fill: n.kind === 'Service' ? '#1d2733' : '#8c959f', class: 'node' }));
    svg.append(svgEl('text', { x: x, y: y + 22, 'text-anchor': 'middle' }, short(n.id)));
  }
  const routeRows = g.routes.map((r) => el('tr', { class: 'route' }, el('td', {}, short(r.from)), el('td', {}, short(r.to) + (r.subset ? ' (' + r.subset + ')' : '') + (r.port ? ':' + r.port : '')),
    el('td', {}, r.weight !== undefined ? r.weight + '%' : ''), el('td', {}, r.virtualService + ' ' + r.protocol + '[' + r.rule + ']'), el('td', { class: 'mono' }, r.match || '*')));
  const routes = g.routes.length ? el('table', {}, el('tr', {}, el('th', {}, 'FROM'), el('th', {}, 'TO'), el('th', {}, 'WEIGHT'), el('th', {}, 'RULE'), el('th', {}, 'MATCH')), ...routeRows) : el('p', { class: 'muted' }, 'No VirtualService routes mesh traffic.');
  let access;
  if (g.accessOmitted) access = el('p', { class: 'muted' }, 'Access matrix left out: ' + g.accessOmitted + '.');
  else {
    const callers = [...new Set(g.access.map((a) => a.from))], targets = [...new Set(g.access.map((a) => a.to))];
    const cell = new Map(g.access.map((a) => [a.from + '>' + a.to, a]));
    access = el('table', { id: 'access' }, el('tr', {}, el('th', {}, 'caller \\\\ callee'), ...targets.map((t) => el('th', {}, short(t)))),
      ...callers.map((c) => el('tr', {}, el('th', {}, short(c)), ...targets.map((t) => { const a = cell.get(c + '>' + t); return a ? el('td', { class: a.decision, title: a.reason }, a.decision) : el('td', {}, ''); }))));
  }
  replace('graph', svg, el('h3', {}, 'Routing rules'), routes, el('h3', {}, 'Who may call whom (AuthorizationPolicy, by caller identity)'), access);
}

async function pick(id) {
  picked = id;
  for (const r of document.querySelectorAll('tr.proxy')) r.classList.toggle('picked', r.getAttribute('data-proxy') === id);
  replace('proxy', el('p', { class: 'muted' }, 'Loading ' + id + ' ...'));
  const res = await fetch('/debug/config_dump?proxyID=' + encodeURIComponent(id));
  if (!res.ok) { replace('proxy', el('p', { class: 'NACKED' }, (await res.text()))); return; }
  const dump = await res.json();
  const lists = [];
  for (const c of dump.configs || []) {
    const type = String(c['@type'] || '').split('.').pop();
    const names = [];
    for (const v of Object.values(c)) {
      if (!Array.isArray(v)) continue;
      for (const x of v) {
        const inner = x.cluster || x.route_config || x.endpoint_config || (x.active_state && x.active_state.listener) || {};
        names.push(x.name || inner.name || inner.cluster_name || '');
      }
    }
    lists.push(el('h3', {}, type + ' (' + names.length + ')'), el('ul', { class: 'mono' }, ...names.filter(Boolean).map((n) => el('li', {}, n))));
  }
  replace('proxy', el('p', { class: 'mono' }, id), ...lists);
  document.getElementById('route-sim').hidden = false;
  document.getElementById('route-for').textContent = id;
}

// The route simulator (GET /debug/route) for the picked proxy; its answer is shown as text.
async function simulate(ev) {
  ev.preventDefault();
  if (!picked) return;
  const f = document.getElementById('route-form');
  const q = new URLSearchParams({ proxyID: picked, to: f.elements.to.value.trim(), path: f.elements.path.value.trim() || '/', method: f.elements.method.value.trim() || 'GET' });
  for (const line of f.elements.headers.value.split('\\n')) if (line.trim()) q.append('header', line.trim());
  const out = document.getElementById('route-result');
  out.textContent = 'Simulating ...';
  out.className = 'mono';
  try {
    const res = await fetch('/debug/route?' + q.toString());
    out.textContent = await res.text();
    out.className = res.ok ? 'mono' : 'mono NACKED';
    out.setAttribute('data-status', String(res.status));
  } catch (e) {
    out.textContent = 'meshd unreachable: ' + e;
  }
}
document.getElementById('route-form').addEventListener('submit', simulate);

async function refresh() {
  try {
    const d = await (await fetch('/ui/data')).json();
    replace('status', 'config ' + (d.version || 'not loaded') + ' · ' + d.proxies.length + ' proxies · ' + d.errors.length + ' config errors · updated ' + new Date().toLocaleTimeString());
    drawProxies(d.proxies);
    drawErrors(d.errors);
    if (d.graph) drawGraph(d.graph);
    document.body.setAttribute('data-loaded', 'true');
  } catch (e) {
    replace('status', 'meshd unreachable: ' + e);
  }
}
refresh();
setInterval(refresh, 3000);
`;

/** The whole page. `version` is meshd's build version, shown in the header. */
export function uiPage(version: string): string {
  const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>meshd</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${STYLE}</style></head>
<body>
<header><h1>meshd ${esc(version)}</h1><span id="status">loading…</span></header>
<main>
<section><h2>Proxies</h2><div id="proxies"></div></section>
<section><h2>Proxy config</h2><div id="proxy"><p class="muted">Pick a proxy above.</p></div>
<div id="route-sim" hidden><h3>Route simulator: one request from <span id="route-for" class="mono"></span></h3>
<form id="route-form">
<label>to <input name="to" placeholder="reviews:9080" required size="28"></label>
<label>path <input name="path" value="/" size="24"></label>
<label>method <input name="method" value="GET" size="7"></label>
<label>headers (name=value, one a line) <textarea name="headers" rows="2" cols="28"></textarea></label>
<button type="submit">Simulate</button>
</form>
<pre id="route-result" class="mono"></pre></div></section>
<section><h2>Config errors</h2><div id="errors"></div></section>
<section><h2>Service graph</h2><div id="graph"></div></section>
</main>
<script>${SCRIPT}</script>
</body></html>
`;
}
