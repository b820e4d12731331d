import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { Liveness, livenessSchedule } from '../../../src/providers/consul/liveness.ts';
import { ProviderError } from '../../../src/providers/errors.ts';

/** Lets promise callbacks run between timer ticks. */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

async function advance(ms: number, step = 100): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    mock.timers.tick(step);
    await flush();
  }
}

describe('Consul liveness with a bound', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  test('the schedule leaves a third of the bound for the reconcile that reports it', () => {
    assert.deepEqual(livenessSchedule(15_000), { downAfterMs: 10_000, probeAfterMs: 3000, probeTimeoutMs: 3000, tickMs: 1000 });
  });

  test('an endpoint that stops answering is down within 2/3 of the bound, with a Timeout; its next answer brings it back', async () => {
    const changes: boolean[] = [];
    let frozen = true;
    let probes = 0;
    const live = new Liveness({
      address: 'http://127.0.0.1:8500',
      boundMs: 15_000,
      // A frozen agent never answers: the probe only ends when its deadline aborts it.
      probe: (signal) => {
        probes += 1;
        if (!frozen) return Promise.resolve();
        return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
      },
      onChange: (alive) => changes.push(alive),
    });
    live.start();
    await advance(9_900);
    assert.equal(live.alive, true, 'not down before 2/3 of the bound');
    assert.ok(probes >= 2, `status calls were made (${probes})`);
    await advance(200);
    assert.equal(live.alive, false);
    assert.deepEqual(changes, [false]);
    const err = live.downError();
    assert.ok(err instanceof ProviderError);
    assert.equal(err.kind, 'Timeout');
    assert.match(err.message, /has not answered for over 10 s \(liveness bound 15 s\)/);

    frozen = false;
    await advance(4_000);
    assert.equal(live.alive, true, 'the next status call that answers brings it back');
    assert.deepEqual(changes, [false, true]);
    live.stop();
  });

  test('answers from other requests keep it alive without status calls; a refused connection is Unreachable', async () => {
    let probes = 0;
    const live = new Liveness({
      address: 'http://127.0.0.1:8500',
      boundMs: 15_000,
      probe: () => {
        probes += 1;
        return Promise.reject(new ProviderError('consul', 'Unreachable', 'connect ECONNREFUSED'));
      },
      onChange: () => undefined,
    });
    live.start();
    for (let i = 0; i < 10; i++) {
      await advance(2_000);
      live.answered();
    }
    assert.equal(probes, 0, 'no status call while other requests answer');
    await advance(11_000);
    assert.equal(live.alive, false);
    assert.equal(live.downError().kind, 'Unreachable');
    live.stop();
  });
});
