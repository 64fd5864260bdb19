/**
 * Composite resources on the wire: a message is its fields in any order, and a repeated
 * message field is each entry as (tag, length, bytes). So a RouteConfiguration can be encoded as
 * its head (every other field) followed by its virtual hosts, each encoded, checked and hashed
 * on its own and reused as bytes.
 */

import { Writer } from './wire';

/** `head` followed by each item as an entry of length-delimited field `fieldNumber`. */
export function concatRepeated(head: Uint8Array, fieldNumber: number, items: readonly Uint8Array[]): Uint8Array {
  const w = new Writer();
  w.raw(head);
  for (const item of items) w.add(fieldNumber, item);
  return w.finish();
}
