/** Messages between the benchmark parent, its client workers and the floor server (process IPC). */
import type { NodeIdentity } from './proto';

export interface ProxySpec extends NodeIdentity {
  /** Global index of the proxy across all workers. */
  idx: number;
}

/** Parent → worker. */
export type ToWorker =
  | { t: 'init'; proxies: ProxySpec[]; delta: boolean }
  /** Open every proxy's stream to addr; record response bytes if `record`. */
  | { t: 'connect'; addr: string; phase: number; record: boolean }
  /** From now on, tag events (and recordings) with this phase. Answered by 'phaseAck'. */
  | { t: 'phase'; phase: number }
  | { t: 'close' }
  /** Write recorded responses to `file` (see recording.ts). Answered by 'dumped'. */
  | { t: 'dump'; file: string }
  | { t: 'exit' };

/**
 * One record per response, flattened into numbers (cheap to send):
 * proxy idx, ACK time (wall clock ms), type index, resources, bytes, became-full flag, phase.
 */
export const EV_FIELDS = 7;

/** Worker → parent. */
export type FromWorker =
  | { t: 'ready' }
  | { t: 'ev'; ev: number[] }
  | { t: 'err'; proxy: number; code: number; details: string; phase: number }
  | { t: 'phaseAck'; recordedBytes: number; uniqueBytes: number }
  | { t: 'closed' }
  | { t: 'dumped'; file: string; bytes: number };

/** Parent → floor server. */
export type ToFloor = { t: 'load'; files: string[]; ids: string[]; delta: boolean; coldPhase: number } | { t: 'push'; phase: number } | { t: 'stop' };

/** Floor server → parent. */
export type FromFloor =
  { t: 'listening'; port: number; responses: number; bytes: number } | { t: 'pushed'; phase: number; proxies: number; responses: number } | { t: 'error'; message: string };

/** Wall clock in ms with sub-millisecond resolution, comparable across processes. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}
