/**
 * Fault test: a seeded slice (1,000 fuzzed objects plus every shape that once hurt meshd) fed
 * into a running meshd's folder and through `meshd validate`. `npm run chaos` runs the same
 * with 10,000 objects (or more) and prints the figures the README quotes.
 *
 * CHAOS_SEED picks another seed; a failure message names the seed to reproduce it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeReport, runChaos } from './helpers/chaos';

const SEED = Number(process.env['CHAOS_SEED'] ?? 20240611);

test(
  `chaos: 1,000 fuzzed objects and every known bad shape, seed ${SEED}: no crash, no NACK, valid config served, /ready answers, clear errors`,
  { timeout: 600_000 },
  async (t) => {
    const r = await runChaos({ seed: SEED, objects: 1000 });
    t.diagnostic(describeReport(r).replace(/\n/g, ' | '));
    assert.equal(r.meshdExit, undefined, `meshd must not exit (seed ${SEED})`);
    assert.deepEqual(r.readyFailures, [], `/ready must answer every poll (seed ${SEED})`);
    assert.ok(r.readyPolls > 10, `/ready was polled (${r.readyPolls})`);
    assert.deepEqual(r.nacks, [], `no client may NACK (seed ${SEED})`);
    assert.deepEqual(r.baselineFailures, [], `the valid route keeps working (seed ${SEED})`);
    assert.ok(r.baselineCalls >= 50, `baseline calls were made (${r.baselineCalls})`);
    assert.deepEqual(r.shapeProblems, [], `each known bad shape gets its clear error in configz (seed ${SEED})`);
    assert.deepEqual(r.validateProblems, [], `meshd validate and the in-process readers (seed ${SEED})`);
    assert.equal(r.objects, 1000);
    // Error lines are cut at 4 KiB; the pino record around one adds its fields (each cut at 1 KiB).
    assert.ok(r.longestLogLine < 16 * 1024, `longest log line ${r.longestLogLine} characters`);
  },
);
