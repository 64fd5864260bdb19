/** Push debounce: 100 ms of quiet, 10 s at most, as istiod. Driven by mocked timers. */
import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { Debouncer } from '../src/xds/debounce';

test('changes are merged until 100 ms pass without another', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  try {
    const flushed: string[][] = [];
    const d = new Debouncer<string>({ quietMs: 100, maxMs: 10_000 }, (ev) => flushed.push(ev));
    d.add('a');
    mock.timers.tick(60);
    d.add('b');
    mock.timers.tick(60);
    assert.deepEqual(flushed, [], 'the second change restarted the quiet period');
    mock.timers.tick(40);
    assert.deepEqual(flushed, [['a', 'b']]);
    d.add('c');
    mock.timers.tick(100);
    assert.deepEqual(flushed, [['a', 'b'], ['c']]);
  } finally {
    mock.timers.reset();
  }
});

test('a steady stream of changes is still pushed after 10 s', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  try {
    const flushed: { n: number; firstAt: number }[] = [];
    const d = new Debouncer<number>({ quietMs: 100, maxMs: 10_000 }, (ev, firstAt) => flushed.push({ n: ev.length, firstAt }));
    for (let i = 0; i < 200; i++) {
      d.add(i);
      mock.timers.tick(50);
    }
    // 200 changes 50 ms apart span 10 s: the first flush happens at the 10 s cap.
    assert.ok(flushed.length >= 1, 'flushed despite never being quiet');
    assert.equal(flushed[0]?.firstAt, 0);
    assert.ok((flushed[0]?.n ?? 0) <= 201 && (flushed[0]?.n ?? 0) >= 199);
    d.stop();
  } finally {
    mock.timers.reset();
  }
});

test('the quiet period counts from when a change happened, when its source says so', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000 });
  try {
    const flushed: { ev: string[]; firstAt: number }[] = [];
    const d = new Debouncer<string>({ quietMs: 100, maxMs: 10_000 }, (ev, firstAt) => flushed.push({ ev, firstAt }));
    // A file written at 1,000 that its source took 60 ms to confirm: 40 ms of quiet are left.
    mock.timers.tick(60);
    d.add('a.yaml', 1_000);
    mock.timers.tick(39);
    assert.deepEqual(flushed, []);
    mock.timers.tick(1);
    assert.deepEqual(flushed, [{ ev: ['a.yaml'], firstAt: 1_000 }]);
    // A later change without a time restarts the full quiet period; an earlier time never shortens it.
    d.add('b.yaml');
    mock.timers.tick(50);
    d.add('c.yaml', 900);
    mock.timers.tick(49);
    assert.equal(flushed.length, 1, 'b.yaml still holds the quiet period');
    mock.timers.tick(1);
    assert.deepEqual(flushed[1], { ev: ['b.yaml', 'c.yaml'], firstAt: 900 });
    // A time in the future is taken as now.
    d.add('d.yaml', 1e15);
    mock.timers.tick(100);
    assert.equal(flushed.length, 3);
  } finally {
    mock.timers.reset();
  }
});
