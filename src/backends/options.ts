/** Options every writing backend reads: batching, timeouts and retries. */
export interface WriterOptions {
  /** Events per backend write (clickhouse: insert when this many are buffered). Default 10,000. */
  batchSize?: number
  /** Buffering backends flush at least this often, even with no new events. Default 30,000 ms. */
  flushIntervalMs?: number
  /** Timeout of every single backend request. Default 10,000 ms. */
  requestTimeoutMs?: number
  /**
   * A failed write is retried with capped exponential backoff; after this much time of failing the
   * backend gives up: the receipts of the events it held reject with a BackendError, and so do later
   * `add()`/`flush()` calls. Default: retry forever.
   */
  maxRetryTimeMs?: number
}
