/**
 * An independent proto3 JSON check: Google's own parser (python3-protobuf's json_format, run by
 * the system Python) with Envoy's descriptors compiled by protoc from the same .proto files
 * meshd loads. It parses JSON strictly and prints it back canonically, so `parseBack(x)` equal to
 * `x` means x is exactly the canonical proto3 JSON of a valid message.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { ENTRY_FILES, includeRoots } from '../../src/xds/protos';

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(__dirname, 'proto3_json.py');

/** Why the checker cannot run here (protoc, the well-known .proto files, python3-protobuf), or undefined. */
function missing(): string | undefined {
  if (spawnSync('protoc', ['--version']).status !== 0) return 'protoc not found (apt-get install -y protobuf-compiler libprotobuf-dev)';
  if (!fs.existsSync('/usr/include/google/protobuf/duration.proto')) return 'the well-known .proto files are missing (apt-get install -y libprotobuf-dev)';
  if (spawnSync(PYTHON, ['-c', 'import google.protobuf.json_format']).status !== 0) return 'python3-protobuf not found (apt-get install -y python3-protobuf)';
  return undefined;
}

/** Skip locally when the checker's tools are missing; fail under CI=true. */
export function requireProto3JsonChecker(t: TestContext): boolean {
  const why = missing();
  if (!why) return true;
  if (process.env['CI'] === 'true') assert.fail(`proto3 JSON checker required under CI=true: ${why}`);
  t.skip(`proto3 JSON checker unavailable: ${why}`);
  return false;
}

/**
 * Envoy's descriptors, compiled once per process. The validate.proto that ships with the Envoy
 * protos predates the `ignore_empty` rule they use; protoc (unlike protobufjs) refuses unknown
 * option fields, so a copy with that field added is put first on the include path. Validation
 * rules play no part in JSON.
 */
let compiled: string | undefined;
function descriptorSet(): string {
  if (compiled) return compiled;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshd-protoc-'));
  const roots = includeRoots().filter((r) => !r.includes('protobufjs'));
  const pgv = roots.find((r) => r.endsWith('protoc-gen-validate'));
  assert.ok(pgv, 'protoc-gen-validate include root');
  fs.mkdirSync(path.join(dir, 'validate'));
  const validate = fs.readFileSync(path.join(pgv, 'validate', 'validate.proto'), 'utf8').replace(/(message (\w+Rules) \{)/g, '$1\n  optional bool ignore_empty = 1000;');
  fs.writeFileSync(path.join(dir, 'validate', 'validate.proto'), validate);
  const out = path.join(dir, 'envoy.pb');
  const args = ['--include_imports', `--descriptor_set_out=${out}`, `-I${dir}`, ...roots.filter((r) => r !== pgv).map((r) => `-I${r}`), '-I/usr/include', ...ENTRY_FILES];
  const r = spawnSync('protoc', args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `protoc failed: ${r.stderr}`);
  compiled = out;
  return out;
}

/** Google's parser's verdict on `json` as a `messageName`: its canonical re-print, or an error with its message. */
export function parseBack(messageName: string, json: unknown): unknown {
  const r = spawnSync(PYTHON, [SCRIPT, descriptorSet(), messageName], { input: JSON.stringify(json), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`Google's proto3 JSON parser rejected it: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as unknown;
}
