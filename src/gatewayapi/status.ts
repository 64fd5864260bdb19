/**
 * The wanted status of the Gateway API objects meshd controls, from the current config: what
 * the status writer compares with the API server's and patches. The conversion computes it
 * with the Istio config it generates (convert.ts), so status and served config always agree.
 */
import type { MeshSnapshot } from '../model/snapshot';
import type { GatewayApiStatus, GatewayApiStatusSource } from './status-types';

/** The statuses of one snapshot: GatewayClasses, Gateways and routes of class `istio`. */
export function gatewayApiStatuses(snap: Pick<MeshSnapshot, 'gatewayApiStatuses'>): readonly GatewayApiStatus[] {
  return snap.gatewayApiStatuses;
}

/** A GatewayApiStatusSource over whatever snapshot is current (none yet: no statuses). */
export function gatewayApiStatusSource(current: () => Pick<MeshSnapshot, 'gatewayApiStatuses'> | undefined): GatewayApiStatusSource {
  return () => {
    const snap = current();
    return snap ? gatewayApiStatuses(snap) : [];
  };
}
