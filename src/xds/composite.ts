/**
 * Composite resources on the wire: a message is its fields in any order, and a repeated
 * message field is each entry as (tag, length, bytes). So a RouteConfiguration can be encoded as
 * its head (every other field) followed by its virtual hosts, each encoded, checked and hashed
 * on its own and reused as bytes.
 */

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** `head` followed by each item as an entry of length-delimited field `fieldNumber`. */
export function concatRepeated(head: Uint8Array, fieldNumber: number, items: readonly Uint8Array[]): Uint8Array {
  const tag = varint((fieldNumber << 3) | 2);
  const prefixes = items.map((b) => [...tag, ...varint(b.length)]);
  let size = head.length;
  for (let i = 0; i < items.length; i++) size += (prefixes[i] as number[]).length + (items[i] as Uint8Array).length;
  const out = new Uint8Array(size);
  out.set(head, 0);
  let at = head.length;
  for (let i = 0; i < items.length; i++) {
    out.set(prefixes[i] as number[], at);
    at += (prefixes[i] as number[]).length;
    out.set(items[i] as Uint8Array, at);
    at += (items[i] as Uint8Array).length;
  }
  return out;
}
