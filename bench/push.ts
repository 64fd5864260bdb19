/**
 * Push benchmark: a generated mesh of S services (each with E endpoints and a VirtualService
 * and DestinationRule), P sidecars and G proxyless gRPC clients connected over real gRPC on
 * 127.0.0.1, all subscribed to CDS/EDS/LDS/RDS. Measures initial config time, the time until
 * every proxy has received a full push after a routing change, after an endpoint-only change,
 * and meshd's heap and encode-cache figures. Bounded: one run, then exits.
 *
 *   npm run bench -- --services 200 --endpoints 5 --sidecars 100 --grpc 50
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { startMeshd } from '../src/meshd';
import { EnvoyProtos, TypeUrl } from '../src/xds/protos';
import { AdsClient, type Response } from '../test/helpers/ads-client';

const { values } = parseArgs({
  options: {
    services: { type: 'string', default: '200' },
    endpoints: { type: 'string', default: '5' },
    sidecars: { type: 'string', default: '100' },
    grpc: { type: 'string', default: '50' },
  },
});
const S = Number(values.services);
const E = Number(values.endpoints);
const P = Number(values.sidecars);
const G = Number(values.grpc);

function meshYaml(subset: string, epOffset: number): { services: string; slices: string; routing: string } {
  const services: string[] = [];
  const slices: string[] = [];
  const routing: string[] = [];
  for (let i = 0; i < S; i++) {
    services.push(`apiVersion: v1\nkind: Service\nmetadata: { name: svc-${i}, namespace: ns-${i % 10} }\nspec:\n  clusterIP: 10.96.${i >> 8}.${i & 255}\n  selector: { app: svc-${i} }\n  ports: [{ name: http, port: 8080 }, { name: grpc, port: 9090 }]\n`);
    const eps = Array.from({ length: E }, (_, j) => `  - addresses: ["10.${(i >> 8) + 1}.${i & 255}.${(j + epOffset) % 250}"]\n    conditions: { ready: true }\n    zone: zone-${j % 3}`).join('\n');
    slices.push(`apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: { name: svc-${i}-abc, namespace: ns-${i % 10}, labels: { kubernetes.io/service-name: svc-${i} } }\naddressType: IPv4\nports: [{ name: http, port: 8080 }, { name: grpc, port: 9090 }]\nendpoints:\n${eps}\n`);
    routing.push(
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: svc-${i}, namespace: ns-${i % 10} }\nspec:\n  host: svc-${i}\n  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]\n---\n` +
        `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: svc-${i}, namespace: ns-${i % 10} }\nspec:\n  hosts: [svc-${i}]\n  http:\n  - match: [{ headers: { end-user: { exact: jason } } }]\n    route: [{ destination: { host: svc-${i}, subset: v2 } }]\n  - route: [{ destination: { host: svc-${i}, subset: ${subset} }, weight: 90 }, { destination: { host: svc-${i}, subset: v2 }, weight: 10 }]\n`,
    );
  }
  return { services: services.join('---\n'), slices: slices.join('---\n'), routing: routing.join('---\n') };
}

function write(dir: string, file: string, text: string): void {
  fs.writeFileSync(path.join(dir, `.${file}.tmp`), text);
  fs.renameSync(path.join(dir, `.${file}.tmp`), path.join(dir, file));
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-bench-'));
  const y = meshYaml('v1', 0);
  write(dir, 'services.yaml', y.services);
  write(dir, 'slices.yaml', y.slices);
  write(dir, 'routing.yaml', y.routing);
  const protos = new EnvoyProtos();
  const heap0 = process.memoryUsage().heapUsed;
  const meshd = await startMeshd({ configDir: dir, xdsPort: 0, debugPort: 0, monitoringPort: -1, logger: pino({ level: 'silent' }), debounceQuietMs: 100 });
  const clients: AdsClient[] = [];
  const addr = `127.0.0.1:${meshd.xdsPort}`;
  const t0 = performance.now();
  for (let i = 0; i < P; i++) clients.push(new AdsClient(protos, addr, { id: `sidecar~10.200.${i >> 8}.${i & 255}~app-${i}.ns-${i % 10}~ns-${i % 10}.svc.cluster.local`, metadata: { NAMESPACE: `ns-${i % 10}` } }, 'names'));
  for (let i = 0; i < G; i++) clients.push(new AdsClient(protos, addr, { id: `sidecar~10.201.${i >> 8}.${i & 255}~grpc-${i}.ns-${i % 10}~ns-${i % 10}.svc.cluster.local`, metadata: { NAMESPACE: `ns-${i % 10}`, GENERATOR: 'grpc' } }, 'names'));

  // Subscribe like Envoy: CDS and LDS wildcard, then EDS for the clusters and RDS for the routes.
  await Promise.all(
    clients.map(async (c) => {
      c.send({ type_url: TypeUrl.Cluster });
      const cds = await c.next(TypeUrl.Cluster, 120_000);
      c.ack(cds);
      const edsNames = cds.resources.filter((r) => r.type === 'EDS' || r.type === 3).map((r) => String(r.name));
      c.send({ type_url: TypeUrl.Endpoint, resource_names: edsNames });
      c.send({ type_url: TypeUrl.Listener });
      const lds = await c.next(TypeUrl.Listener, 120_000);
      c.ack(lds);
      // Sidecars route by port (`0.0.0.0_<port>` → `<port>`); gRPC api listeners by their own name.
      const rdsNames = lds.resources.flatMap((l) => {
        const name = String(l.name);
        if (l.api_listener) return [name];
        return name.startsWith('0.0.0.0_') ? [name.slice('0.0.0.0_'.length)] : [];
      });
      c.send({ type_url: TypeUrl.Route, resource_names: [...new Set(rdsNames)] });
      c.ack(await c.next(TypeUrl.Endpoint, 120_000), edsNames);
      c.ack(await c.next(TypeUrl.Route, 120_000), [...new Set(rdsNames)]);
    }),
  );
  const initialMs = performance.now() - t0;

  const waitAll = async (type: string): Promise<number> => {
    const start = performance.now();
    await Promise.all(
      clients.map(async (c) => {
        const r: Response = await c.next(type, 120_000);
        c.ack(r, r.type_url === TypeUrl.Route || r.type_url === TypeUrl.Endpoint ? r.names : undefined);
      }),
    );
    return performance.now() - start;
  };

  // A routing change (every VirtualService's default subset) → RDS to everyone.
  const y2 = meshYaml('v2', 0);
  const tRouting = performance.now();
  write(dir, 'routing.yaml', y2.routing);
  await waitAll(TypeUrl.Route);
  const routingMs = performance.now() - tRouting;

  // An endpoint-only change → EDS alone.
  const tEds = performance.now();
  write(dir, 'slices.yaml', meshYaml('v2', 1).slices);
  await waitAll(TypeUrl.Endpoint);
  const edsMs = performance.now() - tEds;
  const extra = (await Promise.all(clients.map((c) => c.drain(300)))).flat().length;

  global.gc?.();
  const heapMb = (process.memoryUsage().heapUsed - heap0) / 1024 / 1024;
  const dbg = await (await fetch(`http://127.0.0.1:${meshd.debugPort}/debug/push_status`)).json() as { cache: { hits: number; misses: number; size: number } };
  for (const c of clients) c.close();
  await meshd.close();
  fs.rmSync(dir, { recursive: true, force: true });

  const result = {
    mesh: { services: S, endpointsPerService: E, sidecars: P, grpcClients: G, node: process.version, cpus: os.cpus().length },
    initialFullConfigMs: Math.round(initialMs),
    routingChangeToAllRdsMs: Math.round(routingMs),
    endpointChangeToAllEdsMs: Math.round(edsMs),
    unexpectedExtraResponses: extra,
    heapDeltaMb: Math.round(heapMb),
    encodeCache: dbg.cache,
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
