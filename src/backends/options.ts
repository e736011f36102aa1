/** Events per backend write (`consume --batch-size`, the backends' `batchSize`). */
export const DEFAULT_BATCH_SIZE = 10_000
/** A buffering backend writes at least this often (`consume --flush-interval`, `flushIntervalMs`). */
export const DEFAULT_FLUSH_INTERVAL_MS = 30_000
/** Time allowed for one backend request (`consume --backend-timeout`, the backends' `requestTimeoutMs`). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000

/** Options every writing backend reads: batching, timeouts and retries. */
export interface WriterOptions {
  /** Events per backend write (clickhouse: insert when this many are buffered). Default {@link DEFAULT_BATCH_SIZE}. */
  batchSize?: number
  /** Buffering backends flush at least this often, even with no new events. Default {@link DEFAULT_FLUSH_INTERVAL_MS}. */
  flushIntervalMs?: number
  /** Timeout of every single backend request. Default {@link DEFAULT_REQUEST_TIMEOUT_MS}. */
  requestTimeoutMs?: number
  /**
   * A failed write is retried with capped exponential backoff; after this much time of failing the
   * backend gives up: the receipts of the events it held reject with a BackendError, and so do later
   * `add()`/`flush()` calls. Default: retry forever.
   */
  maxRetryTimeMs?: number
}
