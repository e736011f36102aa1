import {EventEmitter} from 'node:events'
import {type AddReceipt, BackendError, type BackendEvents, type DeviceEvent} from './backend.js'
import {type BatchSink, BatchWriter, type BatchWriterOptions, type WriteBatch} from './batch-writer.js'

/**
 * The lifecycle of a backend that writes through a {@link BatchWriter} (redis, clickhouse), as the
 * {@link CountBackend} contract states it: `add`, `flush`, `close` and the health events are the
 * writer's; a subclass brings its connection (`connect`, `connectForWrites`, `release`) and reads,
 * which call {@link assertOpen} first.
 */
export abstract class BufferedBackend<B extends WriteBatch<DeviceEvent>> extends EventEmitter<BackendEvents> {
  abstract readonly name: string
  abstract readonly location: string
  private readonly writer: BatchWriter<DeviceEvent, B>
  private closing?: Promise<void>

  /** `service` names the backend in messages (`Redis`, `ClickHouse`). */
  constructor(
    private readonly service: string,
    sink: BatchSink<DeviceEvent, B>,
    options: BatchWriterOptions,
  ) {
    super()
    this.writer = new BatchWriter(sink, options)
    // The writer's health events are the backend's, unchanged.
    this.writer.on('write-failed', (error) => this.emit('write-failed', error))
    this.writer.on('write-recovered', (failedForMs) => this.emit('write-recovered', failedForMs))
    this.writer.on('written', (events, durationMs) => this.emit('written', events, durationMs))
    this.writer.on('write-gave-up', (error) => this.emit('write-gave-up', error))
  }

  abstract connect(): Promise<void>

  /** Events accepted and not yet written: buffered, or in the write in flight. */
  get unwrittenEvents(): number {
    return this.writer.unwritten
  }

  /** Events waiting in memory, not yet in a write. */
  protected get bufferedEvents(): number {
    return this.writer.buffered
  }

  async add(events: readonly DeviceEvent[]): Promise<AddReceipt> {
    if (this.writer.failure) throw this.writer.failure
    this.assertOpen()
    await this.connectForWrites()
    return this.writer.add(events)
  }

  /** Writes everything added so far; resolves when it is durable. */
  async flush(): Promise<void> {
    return this.writer.flush()
  }

  /**
   * Refuses further calls, stops retrying a write that is failing (its receipts reject), gives what
   * is buffered one attempt, then releases the connection. Rejects when that last write fails.
   */
  close(): Promise<void> {
    // A later call waits for the first instead of releasing the connection under its flush; a
    // failure is reported by the first call only.
    if (this.closing) return this.closing.catch(() => {})
    this.closing = this.closeOnce()
    return this.closing
  }

  /** Throws the closed error once `close()` was called. */
  protected assertOpen(): void {
    if (this.closing) throw this.closedError()
  }

  protected closedError(): BackendError {
    return new BackendError(`${this.service} backend at ${this.location} is closed`, this.name, this.location)
  }

  /** Before the first write: connects if no connection was ever made (a failure rejects `add()`). */
  protected abstract connectForWrites(): Promise<void>

  /** Releases the connection and timers, once the writer is closed; `closed` is what later requests reject with. */
  protected abstract release(closed: BackendError): Promise<void>

  private async closeOnce(): Promise<void> {
    const closed = this.closedError()
    try {
      await this.writer.close(closed)
    } finally {
      await this.release(closed)
    }
  }
}
