/**
 * Lets a response that already carries its gRPC frame (shared-responses.ts) go to the stream as
 * it is. grpc-js frames every message into a fresh buffer (`serializeMessage`: allocate, write
 * the 5-byte header, copy); for a response shared by a thousand streams that is a thousand
 * copies of the same bytes. The hook answers only for objects carrying FRAMED and leaves every
 * other message, and every other service, to grpc-js as before.
 *
 * grpc-js does not export a way to write pre-framed messages, so this wraps the method of its
 * server call class, once per process (the mark on the prototype makes it idempotent). When the
 * class or method is not where this grpc-js version keeps it, nothing is changed and responses
 * are framed by grpc-js from the same bytes, as before.
 */
import { createRequire } from 'node:module';
import { FRAMED } from './shared-responses';

const HOOKED = Symbol.for('meshd.framedResponses');

type SerializeMessage = (this: unknown, value: unknown) => Buffer;

interface CallPrototype {
  serializeMessage?: SerializeMessage;
  [HOOKED]?: true;
}

/** Installs the hook; true when pre-framed responses are written without a copy. */
export function installFramedResponses(): boolean {
  let proto: CallPrototype | undefined;
  try {
    const req = createRequire(require.resolve('@grpc/grpc-js'));
    const mod = req('./server-interceptors') as { BaseServerInterceptingCall?: { prototype: CallPrototype } };
    proto = mod.BaseServerInterceptingCall?.prototype;
  } catch {
    return false;
  }
  if (!proto) return false;
  if (proto[HOOKED]) return true;
  const original = proto.serializeMessage;
  if (typeof original !== 'function' || original.length !== 1) return false;
  proto.serializeMessage = function serializeMessage(this: unknown, value: unknown): Buffer {
    const framed = value !== null && typeof value === 'object' ? (value as { [FRAMED]?: Buffer })[FRAMED] : undefined;
    return framed ?? original.call(this, value);
  };
  Object.defineProperty(proto, HOOKED, { value: true });
  return true;
}
