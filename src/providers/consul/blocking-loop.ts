/**
 * The one loop for Consul blocking queries: send the last index, follow Consul's index
 * rules (index-rules.ts), back off with jitter on errors and start over from index 0,
 * and never spin when a server returns without waiting.
 */
import { backoffDelay, type BackoffOptions } from '../../runtime/backoff.ts';
import { isSpuriousReturn, nextIndex } from './index-rules.ts';
import { sleep } from './sleep.ts';

export interface BlockingTuning {
  /** Wait of one blocking query (Consul's default is 5 min; shorter finds dead connections sooner). */
  readonly waitMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
}

/** A query that returns faster than this without a new index did not block. */
const MIN_BLOCK_MS = 100;

export interface BlockingLoop<T extends { readonly index: number }> {
  readonly signal: AbortSignal;
  readonly tuning: BlockingTuning;
  /** One blocking query from `index` (0: answer at once). */
  query(index: number, signal: AbortSignal): Promise<T>;
  /**
   * The index of the first query, when the caller already holds an answer at that index
   * from the same server (0 or absent: ask at once). After an error the loop starts from 0.
   */
  readonly firstIndex?: number;
  /** Each answer, with the index that was sent (0 on the first answer and after an error). */
  onAnswer(answer: T, sent: number): void;
  /** Each failure; `failures` counts consecutive ones (1 on the first). */
  onError(error: unknown, failures: number): void;
}

export async function runBlockingLoop<T extends { readonly index: number }>(loop: BlockingLoop<T>): Promise<void> {
  const { signal, tuning } = loop;
  let index = loop.firstIndex ?? 0;
  let failures = 0;
  while (!signal.aborted) {
    const sent = index;
    const started = Date.now();
    try {
      const answer = await loop.query(sent, signal);
      index = nextIndex(sent, answer.index);
      failures = 0;
      loop.onAnswer(answer, sent);
      if (isSpuriousReturn(sent, answer.index, Date.now() - started, MIN_BLOCK_MS)) {
        if (!(await sleep(backoffDelay(1, backoffOf(tuning)), signal))) return;
      }
    } catch (e) {
      if (signal.aborted) return;
      failures += 1;
      loop.onError(e, failures);
      // After an error start over: the server may have restarted with lower indexes.
      index = 0;
      if (!(await sleep(backoffDelay(failures - 1, backoffOf(tuning)), signal))) return;
    }
  }
}

/** Retries spread over ±50% of the exponential delay: many feeds failing together do not retry together. */
function backoffOf(tuning: BlockingTuning): BackoffOptions {
  return { baseMs: tuning.backoffBaseMs, maxMs: tuning.backoffMaxMs, jitter: 0.5 };
}
