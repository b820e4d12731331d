import { test } from 'node:test';
import assert from 'node:assert/strict';
import { consulOptions, RUN_HELP } from '../../../src/cli/run.ts';
import { UsageError } from '../../../src/cli/errors.ts';

test('vmreg run: the Consul connection cap, liveness bound and HTTP/2 watches flags', () => {
  assert.deepEqual(consulOptions('64', '15s'), { maxConnections: 64, livenessBoundMs: 15_000, http2Watches: true });
  assert.deepEqual(consulOptions('10', '1m', 'false'), { maxConnections: 10, livenessBoundMs: 60_000, http2Watches: false });
  assert.throws(() => consulOptions('64', '15s', 'yes'), UsageError, 'true or false only');
  for (const [max, bound] of [['2', '15s'], ['1001', '15s'], ['ten', '15s'], ['64', '500ms'], ['64', 'soon'], ['64', '11m']] as const) {
    assert.throws(() => consulOptions(max, bound), UsageError, `${max} ${bound}`);
  }
  assert.match(RUN_HELP, /--consul-max-connections-per-agent N/);
  assert.match(RUN_HELP, /--consul-liveness-bound DURATION/);
  assert.match(RUN_HELP, /--consul-http2-watches true\|false/);
});
