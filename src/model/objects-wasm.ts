/**
 * WasmPlugin (extensions.istio.io/v1alpha1) as a typed record, after istio/api
 * extensions/v1alpha1/wasm.proto. Specs reach the model only after validation.
 */
import type { PolicyTargetReference } from './objects-security';

export const ISTIO_EXTENSIONS_VERSIONS: readonly string[] = ['v1alpha1'];

export const WASM_PHASES = ['UNSPECIFIED_PHASE', 'AUTHN', 'AUTHZ', 'STATS'] as const;
export type WasmPhase = (typeof WASM_PHASES)[number];
export const WASM_PULL_POLICIES = ['UNSPECIFIED_POLICY', 'IfNotPresent', 'Always'] as const;
export const WASM_FAIL_STRATEGIES = ['FAIL_CLOSE', 'FAIL_OPEN', 'FAIL_RELOAD'] as const;
export const WASM_PLUGIN_TYPES = ['UNSPECIFIED_PLUGIN_TYPE', 'HTTP', 'NETWORK'] as const;
export type WasmPluginType = (typeof WASM_PLUGIN_TYPES)[number];

export interface WasmEnvVar {
  name: string;
  valueFrom?: 'INLINE' | 'HOST';
  value?: string;
}

export interface WasmTrafficSelector {
  mode?: 'UNDEFINED' | 'CLIENT' | 'SERVER' | 'CLIENT_AND_SERVER';
  ports?: Array<{ number?: number; name?: string }>;
}

export interface WasmPluginSpec {
  selector?: { matchLabels?: Record<string, string> };
  targetRef?: PolicyTargetReference;
  targetRefs?: PolicyTargetReference[];
  url: string;
  sha256?: string;
  imagePullPolicy?: (typeof WASM_PULL_POLICIES)[number];
  imagePullSecret?: string;
  pluginConfig?: Record<string, unknown>;
  pluginName?: string;
  failStrategy?: (typeof WASM_FAIL_STRATEGIES)[number];
  phase?: WasmPhase;
  priority?: number;
  vmConfig?: { env?: WasmEnvVar[] };
  match?: WasmTrafficSelector[];
  type?: WasmPluginType;
}
