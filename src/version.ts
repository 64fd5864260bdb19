/**
 * meshd's version, from package.json (the one place it is written), in the shapes Istio's tools
 * read: istiod's BuildInfo (`/version`, the xDS ControlPlane identifier) and its build gauge.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** package.json sits one folder above this file, whether it runs from src/ or from dist/. */
function packageVersion(): string {
  const file = path.join(__dirname, '..', 'package.json');
  const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string' || pkg.version === '') throw new Error(`${file} has no version`);
  return pkg.version;
}

export const MESHD_VERSION: string = packageVersion();

/** istio.io/istio/pkg/version.BuildInfo, with its JSON names. */
export interface BuildInfo {
  version: string;
  revision: string;
  golang_version: string;
  status: string;
  tag: string;
}

export function buildInfo(): BuildInfo {
  // No build stamping: the revision and status are unknown, as in an unstamped istiod build.
  // golang_version names the runtime that runs meshd.
  return { version: MESHD_VERSION, revision: 'unknown', golang_version: `node${process.versions.node}`, status: 'unknown', tag: MESHD_VERSION };
}

/** What istiod's `/version` answers: BuildInfo.String(), `<version>-<revision>-<status>`. */
export function versionLine(): string {
  const b = buildInfo();
  return `${b.version}-${b.revision}-${b.status}`;
}

/**
 * The `control_plane.identifier` istiod puts on every DiscoveryResponse (its
 * IstioControlPlaneInstance as JSON): istioctl reads the instance ID and version from it.
 */
export function controlPlaneIdentifier(instanceId: string): string {
  return JSON.stringify({ Component: 'istiod', ID: instanceId, Info: buildInfo() });
}
