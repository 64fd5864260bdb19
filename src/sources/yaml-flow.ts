/**
 * YAML as Kubernetes reads it, where that differs from YAML 1.2 in the text meshd is given.
 *
 * Kubernetes (and istioctl) read YAML with go-yaml, whose scanner ends a plain scalar inside a
 * flow collection only at `: ` (a colon and a blank) or at `,[]{}`. YAML 1.2, which both of
 * meshd's YAML libraries follow, also ends it at a colon that a flow indicator follows. So in
 * `addresses: [1.2.3.4, 001:db8::]` Kubernetes reads the string `001:db8::`, while a YAML 1.2
 * reader sees the one-pair mapping `{"001:db8:": null}` and the object fails validation.
 *
 * The repair works on the yaml library's concrete syntax tree before it is composed: inside a
 * flow collection, an implicit key that is a plain scalar, followed straight away (no blank) by
 * `:` and then by nothing but the end of the entry, is read as one plain scalar with the colon
 * kept, as go-yaml reads it. Offsets are kept, so error positions stay right.
 */
import { CST, Composer, LineCounter, Parser, parseAllDocuments, type Document } from 'yaml';

type Token = CST.Token;
type Item = CST.CollectionItem;

/** Text where a colon is followed directly by a flow indicator: only such text needs the repair. */
export const FLOW_COLON = /:[,\]}]/;

function isPlain(t: Token | null | undefined): t is CST.FlowScalar {
  return t !== undefined && t !== null && t.type === 'scalar';
}

/** `key:` with nothing after the colon, the colon right behind the key: go-yaml's plain scalar `key:`. */
function goScalar(item: Item): CST.FlowScalar | undefined {
  const { key, sep, value } = item;
  if (!isPlain(key) || !sep || sep.length !== 1) return undefined;
  const colon = sep[0];
  if (colon?.type !== 'map-value-ind' || colon.offset !== key.offset + key.source.length) return undefined;
  if (value !== undefined && !(isPlain(value) && value.source === '' && (value.end ?? []).length === 0)) return undefined;
  return { type: 'scalar', offset: key.offset, indent: key.indent, source: `${key.source}:`, end: [] };
}

/** A block map that YAML 1.2 made of `key:` inside a flow collection (`{a: 001:db8::}`). */
function goScalarOfBlockMap(t: Token | undefined): CST.FlowScalar | undefined {
  if (t?.type !== 'block-map' || t.items.length !== 1) return undefined;
  const item = t.items[0] as Item;
  return item.start.length === 0 ? goScalar(item) : undefined;
}

function repair(t: Token | undefined, inFlow: boolean): void {
  if (t === undefined) return;
  switch (t.type) {
    case 'document':
      repair(t.value, false);
      return;
    case 'block-map':
    case 'block-seq':
      for (const item of t.items) {
        repair(item.key ?? undefined, inFlow);
        repair(item.value, inFlow);
      }
      return;
    case 'flow-collection':
      t.items.forEach((item, i) => {
        const asScalar = goScalar(item);
        if (asScalar) {
          t.items[i] = { start: item.start, value: asScalar };
          return;
        }
        const inner = goScalarOfBlockMap(item.value);
        if (inner) {
          item.value = inner;
          return;
        }
        repair(item.key ?? undefined, true);
        repair(item.value, true);
      });
      return;
    default:
      void inFlow;
  }
}

/**
 * The yaml library's parseAllDocuments (with `merge`), reading flow collections as Kubernetes
 * does. Text without a colon right before a flow indicator is read by parseAllDocuments itself.
 */
export function parseYamlDocuments(text: string): Document.Parsed[] {
  if (!FLOW_COLON.test(text)) {
    const docs = parseAllDocuments(text, { merge: true });
    return Array.isArray(docs) ? docs : [];
  }
  const lines = new LineCounter();
  const parser = new Parser(lines.addNewLine);
  const tokens: Token[] = [];
  for (const token of parser.parse(text)) {
    repair(token, false);
    tokens.push(token);
  }
  const docs = [...new Composer({ merge: true }).compose(tokens)] as Document.Parsed[];
  // As parseAllDocuments' prettyErrors does, as far as meshd's messages read it: the position.
  for (const doc of docs) {
    for (const e of [...doc.errors, ...doc.warnings]) {
      if (e.pos[0] === -1) continue;
      e.linePos = [lines.linePos(e.pos[0]), lines.linePos(e.pos[1])];
      e.message += ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}`;
    }
  }
  return docs;
}
