/**
 * Heartbeats while a batch is in work: kafkajs heartbeats only between batches, and a batch can
 * wait long for the backend (back-pressure, retries). One heartbeat in flight at a time.
 */
export class BatchHeartbeat {
  private error: unknown
  private pending?: Promise<void>
  private readonly timer: NodeJS.Timeout

  constructor(heartbeat: () => Promise<void>, intervalMs: number) {
    this.timer = setInterval(() => {
      this.pending ??= heartbeat()
        .catch((error: unknown) => {
          this.error ??= error
        })
        .finally(() => (this.pending = undefined))
    }, intervalMs)
  }

  stop(): void {
    clearInterval(this.timer)
  }

  /** Waits for a heartbeat in flight; resolves with the first heartbeat failure, if any. */
  async settled(): Promise<unknown> {
    await this.pending
    return this.error
  }
}
