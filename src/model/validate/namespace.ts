/** Namespace (v1): only metadata matters to meshd (its labels select injection and policy). */
import type { ConfigObject } from '../objects';
import { Issues } from './common';
import { checkSchema, open, arrayOf, str } from './schema';

const namespaceSchema = open({ spec: open({ finalizers: arrayOf(str) }) });

export function validateNamespace(obj: ConfigObject, issues: Issues): void {
  checkSchema(obj.body, namespaceSchema, '', issues);
}
