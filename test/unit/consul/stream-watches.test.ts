/**
 * Service watches over HTTP/2 (stream-watches.ts), with a stand-in for the stream and mock
 * timers: a watch blocks from the cached index and follows Consul's index rules, stops
 * (cancelling its query) when no longer wanted, and a query past its wait and deadline is
 * ended by the sweep and retried from 0 after a backoff, its failure reported once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConsulResponse } from '../../../src/providers/consul/client.ts';
import { StreamWatches, type StreamWatchHooks } from '../../../src/providers/consul/stream-watches.ts';

interface Sent {
  readonly service: string;
  readonly index: number;
  readonly answer: (res: ConsulResponse) => void;
  readonly fail: (e: unknown) => void;
  cancelled: boolean;
}

function harness(cached: Record<string, number> = {}): { watches: StreamWatches; sent: Sent[]; answered: string[]; failed: string[] } {
  const sent: Sent[] = [];
  const answered: string[] = [];
  const failed: string[] = [];
  const hooks: StreamWatchHooks = {
    send: (service, index, answer, fail) => {
      const s: Sent = { service, index, answer, fail, cancelled: false };
      sent.push(s);
      return () => (s.cancelled = true);
    },
    answered: (service, res) => answered.push(`${service}@${res.index}`),
    failed: (service) => failed.push(service),
    cachedIndex: (service) => cached[service],
    now: () => Date.now(),
  };
  const watches = new StreamWatches(hooks, { waitMs: 60_000, deadlineMs: 10_000, backoff: { baseMs: 100, maxMs: 1000, jitter: 0 } });
  return { watches, sent, answered, failed };
}

const res = (index: number): ConsulResponse => ({ body: [], index, filteredByAcls: false, knownLeader: true });

test('a watch blocks from the cached index, follows each answer, and is cancelled when no longer wanted', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
  const { watches, sent, answered } = harness({ web: 40 });
  watches.set(['web', 'api']);
  assert.deepEqual(sent.map((s) => `${s.service}@${s.index}`), ['web@40', 'api@0'], 'from the cached index; 0 without one');
  t.mock.timers.tick(5000);
  sent[0]?.answer(res(41));
  assert.deepEqual(answered, ['web@41']);
  assert.equal(sent.at(-1)?.index, 41, 'asked again from the new index');
  watches.set(['api']);
  assert.equal(sent.at(-1)?.cancelled, true, "web's query cancelled");
  assert.deepEqual([...watches.watched], ['api']);
  watches.close();
  assert.equal(sent[1]?.cancelled, true);
});

test('a query past its wait and deadline is ended by the sweep and retried from 0 after a backoff; its failure is reported once', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'] });
  const { watches, sent, failed } = harness({ web: 40 });
  watches.set(['web']);
  // The wait (60 s), Consul's jitter (wait/16) and the deadline (10 s) pass with no answer.
  t.mock.timers.tick(60_000 + 3750 + 10_000 + 15_000);
  assert.equal(sent[0]?.cancelled, true, 'the overdue query was ended');
  assert.deepEqual(failed, ['web']);
  t.mock.timers.tick(100);
  assert.equal(sent.length, 2, 'retried after the backoff');
  assert.equal(sent[1]?.index, 0, 'from index 0: the server may have restarted');
  sent[1]?.fail(new Error('refused'));
  t.mock.timers.tick(200);
  assert.equal(sent.length, 3, 'retried after a longer backoff');
  assert.deepEqual(failed, ['web'], 'consecutive failures reported once');
  sent[2]?.answer(res(50));
  sent[3]?.fail(new Error('refused'));
  assert.deepEqual(failed, ['web', 'web'], 'a failure after an answer is reported again');
  watches.close();
});
