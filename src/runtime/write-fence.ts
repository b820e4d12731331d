/**
 * The write fence: every write of the operator passes it. The leader elector opens it
 * when this replica becomes leader and closes it, for good, when leadership can no
 * longer be confirmed (renew deadline passed, lease lost, shutting down). Closing it
 * aborts the writes in flight through its AbortSignal; a closed fence never reopens, so a
 * replica that lost the lease cannot write again (it exits, as controller-runtime does).
 */

/** A write refused or aborted because this replica is not (or no longer) the confirmed leader. */
export class FencedError extends Error {
  override readonly name = 'FencedError';
  readonly operation: string;
  constructor(operation: string, why: string, options?: { cause?: unknown }) {
    super(`${operation}: not written: ${why}`, options);
    this.operation = operation;
  }
}

export class WriteFence {
  private readonly controller = new AbortController();
  private opened: boolean;
  private closedBecause = 'leadership is not confirmed yet';
  private readonly onRefused: (() => void) | undefined;

  /** `open`: writes may start at once (no leader election). `onRefused` counts refused or aborted writes. */
  constructor(open: boolean, onRefused?: () => void) {
    this.opened = open;
    this.onRefused = onRefused;
  }

  get isOpen(): boolean {
    return this.opened;
  }

  /** Aborted when the fence closes. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get reason(): string {
    return this.closedBecause;
  }

  /** Lets writes through; a fence that was closed stays closed. */
  open(): void {
    if (!this.controller.signal.aborted) this.opened = true;
  }

  close(why: string): void {
    if (this.controller.signal.aborted) return;
    this.opened = false;
    this.closedBecause = why;
    this.controller.abort(new Error(why));
  }

  /** Throws FencedError unless writes may start now. */
  check(operation: string): void {
    if (this.opened) return;
    this.refused();
    throw new FencedError(operation, this.closedBecause);
  }

  /** Counts a write the fence stopped (refused before sending or aborted in flight). */
  refused(): void {
    this.onRefused?.();
  }
}
