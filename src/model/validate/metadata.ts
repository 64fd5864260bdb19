/** Object metadata: name syntax per kind, namespace, label and annotation keys and values. */
import { KNOWN_KINDS, type ConfigObject } from '../objects';
import { Issues, pathKey } from './common';
import { checkK8sLabels } from './k8s-common';
import { dns1035LabelError, dnsLabelError, dnsSubdomainError, labelKeyError } from './names';

/** Kubernetes' name rule for each kind (Services are DNS-1035 labels, Namespaces DNS labels). */
function nameError(obj: ConfigObject): string | undefined {
  const name = obj.metadata.name;
  switch (obj.kind) {
    case 'Namespace':
      return dnsLabelError(name);
    case 'Service':
      return dns1035LabelError(name);
    default:
      return dnsSubdomainError(name);
  }
}

export function validateMetadata(obj: ConfigObject, issues: Issues): void {
  issues.addIf('metadata.name', nameError(obj));
  if (KNOWN_KINDS[obj.kind].namespaced) issues.addIf('metadata.namespace', dnsLabelError(obj.metadata.namespace));
  checkK8sLabels(issues, 'metadata.labels', obj.metadata.labels);
  for (const key of Object.keys(obj.metadata.annotations)) {
    issues.addIf(pathKey('metadata.annotations', key), labelKeyError(key));
  }
}
