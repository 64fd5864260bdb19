/**
 * A file's text → its valid objects and its problems: parse, validate, bound. The folder
 * source and `meshd validate` both read files through here.
 */
import { DEFAULT_INPUT_LIMITS, type InputLimits } from '../config/limits';
import type { ConfigError, ConfigObject } from '../model/objects';
import { objectError } from '../model/objects';
import { boundErrors } from './bounds';
import { parseDocuments, parseDocumentsAsync, yieldToEventLoop } from './parse';
import { validated, validateOne } from './source';

export interface FileResult {
  objects: ConfigObject[];
  errors: ConfigError[];
}

/** Parse + validate one file's text: valid objects in, invalid ones reported with field paths. */
export function loadText(text: string, source: string, limits: InputLimits = DEFAULT_INPUT_LIMITS): FileResult {
  return validated(parseDocuments(text, source, { limits }), limits);
}

/**
 * loadText in slices of about `sliceMs`, yielding to the event loop between them: a large
 * file is read while `/ready` and xDS keep answering.
 */
export async function loadTextAsync(text: string, source: string, limits: InputLimits = DEFAULT_INPUT_LIMITS, sliceMs = 10): Promise<FileResult> {
  const parsed = await parseDocumentsAsync(text, source, { limits, sliceMs });
  const objects: ConfigObject[] = [];
  const errors: ConfigError[] = [...parsed.errors];
  let since = performance.now();
  for (const o of parsed.objects) {
    const fieldErrors = validateOne(o, limits);
    if (fieldErrors.length > 0) errors.push(objectError(o, fieldErrors));
    else objects.push(o);
    if (performance.now() - since >= sliceMs) {
      await yieldToEventLoop();
      since = performance.now();
    }
  }
  return { objects, errors: boundErrors(errors, limits) };
}
