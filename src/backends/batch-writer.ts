import {EventEmitter} from 'node:events'
import type {AddReceipt, BackendError, BackendEvents} from './backend.js'
import {BackendGaveUpError} from './backend.js'
import {retryWithBackoff, type RetryPolicy} from './retry.js'

/** What a backend collects for one write: it counts the items appended (what `batchSize` limits). */
export interface WriteBatch<T> {
  readonly size: number
  append(item: T): void
}

/** Where a BatchWriter writes: a backend's write encoding and the wording of its failures. */
export interface BatchSink<T, B extends WriteBatch<T>> {
  /** An empty batch; it encodes each item as it is appended. */
  newBatch(): B
  /** One attempt at writing a batch; the writer retries it. */
  write(batch: B): Promise<void>
  /** `inserting 10000 rows`: names a batch in messages. */
  describe(batch: B): string
  /** The backend's BackendError for a failure of `action`; its `retriable` decides whether the writer retries. */
  failure(action: string, error: unknown): BackendError
}

export interface BatchWriterOptions {
  /** Items per batch. While one batch is being written the next fills; once that is full too, `add()` waits. */
  batchSize: number
  /**
   * A batch is written this long after its first item arrived, full or not. 0: as soon as no other
   * write is in flight (group commit: whatever arrived during one write goes out in the next).
   */
  flushIntervalMs: number
  /** How a failed write is retried. */
  retryPolicy: RetryPolicy
}

interface PendingBatch<B> {
  readonly batch: B
  /** The flush interval passed or `flush()` asked for it: write as soon as possible. */
  due: boolean
  timer?: NodeJS.Timeout
  /** Resolves when the batch was written; rejects when the writer gave up on it. */
  readonly written: Promise<void>
  resolve(): void
  reject(error: BackendError): void
}

/**
 * The buffering of a sink (as in Vector's and Kafka Connect's): items collect in a batch that is
 * written when it holds `batchSize` items or `flushIntervalMs` after its first item, whichever comes
 * first. One write is in flight at a time and batches are written in order, so at most two batches
 * are in memory. A failed write keeps its batch and is retried with capped exponential backoff; when
 * the retry policy gives up (or the failure is permanent) that batch and the filling one are
 * rejected and every later `add()`/`flush()` rejects with the same error.
 *
 * The writer reports its health itself, as the {@link BackendEvents} a backend passes on unchanged:
 * `write-failed` for every failed attempt, `write-recovered` for the first success after failures,
 * `written` for every write, `write-gave-up` when it stops retrying (then with a
 * {@link BackendGaveUpError} if it had retried).
 *
 * `add()` hands back a receipt whose `durable` resolves once the batches holding its items are
 * written, and rejects with the BackendError if the writer gave up on them: a consumer commits
 * offsets on the one and stops on the other, also when no further events arrive.
 */
export class BatchWriter<T, B extends WriteBatch<T>> extends EventEmitter<BackendEvents> {
  private filling: PendingBatch<B>
  private writing?: {pending: PendingBatch<B>; done: Promise<void>}
  private failed?: BackendError
  /** The error `add()` rejects with once closed. */
  private closed?: BackendError
  /** When the first attempt failed since the last successful write. */
  private failingSince?: number
  private retrying = true
  private readonly stopRetries = new AbortController()

  constructor(
    private readonly sink: BatchSink<T, B>,
    private readonly options: BatchWriterOptions,
  ) {
    super()
    this.filling = this.newPending()
  }

  /** Items waiting in memory (not yet in a write). */
  get buffered(): number {
    return this.filling.batch.size
  }

  /** Items added and not yet written: buffered, or in the write in flight. */
  get unwritten(): number {
    return this.filling.batch.size + (this.writing?.pending.batch.size ?? 0)
  }

  /** The error the writer gave up with, if it did. */
  get failure(): BackendError | undefined {
    return this.failed
  }

  async add(items: readonly T[]): Promise<AddReceipt> {
    const {batchSize} = this.options
    const batches: Array<PendingBatch<B>> = []
    let next = 0
    while (next < items.length) {
      this.assertUsable()
      const pending = this.filling
      if (pending.batch.size >= batchSize) {
        // Back-pressure: the batch in flight and this one are both full.
        this.pump()
        await this.writing?.done
        continue
      }
      if (pending.batch.size === 0) this.startTimer(pending)
      const end = Math.min(items.length, next + batchSize - pending.batch.size)
      for (let index = next; index < end; index++) pending.batch.append(items[index])
      next = end
      if (batches.at(-1) !== pending) batches.push(pending)
      this.pump()
    }
    if (batches.length === 0) return {durable: Promise.resolve()}
    if (batches.length === 1) return {durable: batches[0].written}
    const durable = Promise.all(batches.map((pending) => pending.written)).then(() => {})
    durable.catch(() => {})
    return {durable}
  }

  /** Writes everything added so far now; resolves when it is written. */
  async flush(): Promise<void> {
    if (this.failed) throw this.failed
    const target = this.filling.batch.size > 0 ? this.filling : this.writing?.pending
    if (!target) return
    target.due = true
    this.pump()
    await target.written
  }

  /**
   * Refuses further `add()` calls (with `closed`), stops retrying and flushes: a write that is
   * failing gives up now with `closed`, and what is buffered gets one attempt; the unwritten items'
   * receipts reject. Rejects when this flush fails; a give-up reported before `close()` is not
   * reported again.
   */
  async close(closed: BackendError): Promise<void> {
    if (this.closed) return
    this.closed = closed
    if (this.failed) return
    this.retrying = false
    if (this.failingSince !== undefined) this.stopRetries.abort(closed)
    try {
      await this.flush()
    } finally {
      clearTimeout(this.filling.timer)
    }
  }

  private newPending(): PendingBatch<B> {
    let resolve!: () => void
    let reject!: (error: BackendError) => void
    const written = new Promise<void>((res, rej) => {
      resolve = res
      reject = rej
    })
    // Handled here: a batch whose receipts nobody awaits must not crash the process when it fails.
    written.catch(() => {})
    return {batch: this.sink.newBatch(), due: false, written, resolve, reject}
  }

  private startTimer(pending: PendingBatch<B>): void {
    if (this.options.flushIntervalMs === 0) {
      pending.due = true
      return
    }
    pending.timer = setTimeout(() => {
      pending.due = true
      this.pump()
    }, this.options.flushIntervalMs)
    // The timer alone never keeps a process alive; close() flushes what is left.
    pending.timer.unref()
  }

  /** Starts writing the filling batch if it is full or due and no write is in flight. */
  private pump(): void {
    if (this.writing || this.failed) return
    const pending = this.filling
    if (pending.batch.size === 0 || (!pending.due && pending.batch.size < this.options.batchSize)) return
    clearTimeout(pending.timer)
    this.filling = this.newPending()
    const done = this.write(pending).then(() => {
      this.writing = undefined
      this.pump()
    })
    this.writing = {pending, done}
  }

  /** Writes one batch, retrying until it succeeds or the retry policy gives up. Never rejects. */
  private async write(pending: PendingBatch<B>): Promise<void> {
    const {batch} = pending
    const {sink} = this
    let attemptStarted = 0
    try {
      await retryWithBackoff(() => ((attemptStarted = performance.now()), sink.write(batch)), {
        policy: this.options.retryPolicy,
        signal: this.stopRetries.signal,
        isRetryable: (error) => this.retrying && sink.failure(sink.describe(batch), error).retriable,
        onFailure: (error, retryInMs) => {
          this.failingSince ??= Date.now()
          this.emit('write-failed', sink.failure(`${sink.describe(batch)} (retrying in ${retryInMs} ms)`, error))
        },
      })
      if (this.failingSince !== undefined) {
        const failedForMs = Date.now() - this.failingSince
        this.failingSince = undefined
        this.emit('write-recovered', failedForMs)
      }
      this.emit('written', batch.size, performance.now() - attemptStarted)
      pending.resolve()
    } catch (error) {
      const given = sink.failure(`${sink.describe(batch)} (gave up)`, error)
      // After failed attempts it gave up on retrying; a first failure that retrying cannot fix is the failure itself.
      this.failed = this.failingSince === undefined ? given : new BackendGaveUpError(given)
      this.emit('write-gave-up', this.failed)
      pending.reject(this.failed)
      clearTimeout(this.filling.timer)
      this.filling.reject(this.failed)
    }
  }

  private assertUsable(): void {
    if (this.failed) throw this.failed
    if (this.closed) throw this.closed
  }
}
