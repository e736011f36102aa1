import type {EventEmitter} from 'node:events'
import type {BoundedCountQuery, BucketSize, CountQuery, SeriesPoint} from '../query/count-query.js'

/** One valid, normalised network event, as every backend receives it. */
export interface DeviceEvent {
  /** Event time, epoch milliseconds UTC (from the parsed `timestamp` field). */
  timestampMs: number
  /** Normalised IP: IPv4 dotted decimal, IPv6 lower-case compressed. */
  deviceIp: string
  /** Integer in -128..127. */
  errorCode: number
  /** The Kafka message the event came from; backends that keep raw events store it once per message. */
  source?: EventSource
}

/** A Kafka message's coordinates. */
export interface EventSource {
  topic: string
  partition: number
  /** Kafka offsets are 64-bit: kept as the decimal text kafkajs gives. */
  offset: string
}

/**
 * Returned by {@link CountBackend.add}. `durable` resolves once every event of that call has been
 * written durably by the backend (for buffering backends: after the write that contains them). A
 * failed write is retried by the backend and reported as a `write-failed` event; `durable` rejects with a
 * BackendError only when the backend gave up on those events (retry time used up, a permanent
 * refusal, or closed while failing), so a consumer can stop with their offsets uncommitted.
 */
export interface AddReceipt {
  durable: Promise<void>
}

/**
 * What a backend tells about its health, as events (`backend.on('write-failed', …)`), the way a
 * kafkajs client reports its own through instrumentation events.
 */
export interface BackendEvents {
  /** A write attempt failed; the backend retries it. */
  'write-failed': [error: BackendError]
  /** A write succeeded after at least one failed attempt, `failedForMs` after the first of them. */
  'write-recovered': [failedForMs: number]
  /** A write of `events` events succeeded; its last attempt took `durationMs`. */
  written: [events: number, durationMs: number]
  /** The backend gave up on a write (retry time used up, a permanent refusal): its events are not stored. */
  'write-gave-up': [error: BackendError]
}

/**
 * The one interface every command uses to count. Implementations: redis (HyperLogLog, approximate),
 * clickhouse (batched inserts, exact), memory (exact, in-process).
 *
 * The lifecycle contract, the same for every implementation (test/integration/backend-contract.test.ts
 * runs each through it; redis and clickhouse share it in code, as `BufferedBackend` in buffered-backend.ts):
 * - Creating a backend checks its options (an invalid URL or name throws at once) and opens nothing.
 * - `connect()` is eager: it reaches the service and prepares what the backend needs (ClickHouse
 *   creates database, tables and rollups; Redis checks the key holds a HyperLogLog), so a command
 *   fails before it does any work. It may be called again, also after it failed. Every other
 *   operation connects on demand too, so calling it is not required; a connection lost later is
 *   opened again by the next operation.
 * - `add()` resolves once the events are accepted, later when the buffer is full (back-pressure),
 *   with a receipt whose `durable` settles when they are written (see {@link AddReceipt}). `add()`
 *   itself rejects only when the backend is closed, has given up, or its first connection fails.
 * - A failed write is retried with capped exponential backoff until `maxRetryTimeMs` (see `WriterOptions`)
 *   has passed, each failure a `write-failed` event ({@link BackendEvents}). When the writer gives up
 *   (time used up, or a failure retrying cannot fix) the receipts of the unwritten events reject, and
 *   every later `add()` and `flush()` rejects with the same error: a {@link BackendGaveUpError} when
 *   it gave up after retrying.
 * - `flush()` writes what is buffered and resolves when it is durable, retrying as a write does.
 * - `close()` refuses further `add()`, stops retrying a write that is failing, gives what is buffered
 *   one attempt, then releases connections and timers; it rejects (and so do the receipts of what
 *   was not written) if that last write fails. To wait out an outage, `flush()` first. A second
 *   call is safe: it waits for the first and resolves. After `close()`, `connect()`, `add()` and the
 *   counts reject with a BackendError saying the backend is closed, which is not retriable.
 * - Every failure is a BackendError naming the backend and its location, never a password, whose
 *   `retriable` comes from the backend's one classification of errors: unreachable, timed out or busy
 *   is retriable; refused (credentials, a key or table of another type, a bad query) or closed is not.
 *   Reads (`count()`…) fail at once; only writes are retried.
 */
export interface CountBackend extends Pick<EventEmitter<BackendEvents>, 'on' | 'off'> {
  /** Registry name: `redis`, `clickhouse`, `memory`. */
  readonly name: string
  /** Whether `count()` is exact (true) or an estimate (false). */
  readonly exact: boolean
  /** Human-readable location for messages, without credentials (e.g. `redis://127.0.0.1:6379`). */
  readonly location: string
  /** Connects and prepares what is missing (ClickHouse database and tables; Redis checks the key's type). */
  connect(): Promise<void>
  /**
   * Accepts events. Resolves when they are accepted (buffered or written); applies back-pressure by
   * resolving later when the backend's buffer is full. The receipt tells when they are durable.
   */
  add(events: readonly DeviceEvent[]): Promise<AddReceipt>
  /** Writes everything buffered; resolves when it is durable. */
  flush(): Promise<void>
  /** Events accepted by `add()` and not yet written durably (buffered or in a write in flight). */
  readonly unwrittenEvents: number
  /** Number of distinct device IPs stored. */
  count(): Promise<number>
  /** Gives what is buffered one attempt, then releases connections and timers; safe to call twice. */
  close(): Promise<void>
}

/**
 * How a backend applies the time bounds of a query: `exact` to the millisecond, or `hour`: the range
 * is widened to whole UTC hours (the start rounded down, the end rounded up).
 */
export type TimeResolution = 'exact' | 'hour'

/**
 * A backend that also counts a time range and error codes (`ipc count --since/--until/--error-code/--by`).
 * Every built-in backend is one; see {@link supportsRangeCounts}.
 */
export interface RangeCountBackend extends CountBackend {
  readonly timeResolution: TimeResolution
  /** Distinct device IPs with at least one event in the query's range and error codes. */
  countUnique(query: CountQuery): Promise<number>
  /**
   * Distinct device IPs per UTC hour or day, one point for every bucket the range touches (0 where no
   * event), in order; each bucket counts only its part inside the range.
   */
  countSeries(query: BoundedCountQuery, by: BucketSize): Promise<SeriesPoint[]>
}

export function supportsRangeCounts(backend: CountBackend): backend is RangeCountBackend {
  const candidate = backend as Partial<RangeCountBackend>
  return typeof candidate.countUnique === 'function' && typeof candidate.countSeries === 'function'
}

/**
 * What a backend's freshness measures: `newest-event`, the time of the newest event stored (its own
 * timestamp, as the device sent it); `last-write`, when the backend last stored events (the writer's clock).
 */
export type FreshnessMeasure = 'newest-event' | 'last-write'

/** A backend that tells how fresh its data is (`ipc serve`'s dashboard). Every built-in backend is one. */
export interface FreshnessBackend extends CountBackend {
  readonly freshnessMeasure: FreshnessMeasure
  /** Epoch ms of the newest event or of the last write, as `freshnessMeasure` says; undefined while nothing is stored. */
  freshness(): Promise<number | undefined>
}

export function supportsFreshness(backend: CountBackend): backend is FreshnessBackend {
  return typeof (backend as Partial<FreshnessBackend>).freshness === 'function'
}

/** A backend could not be reached or refused an operation. `location` names where, never a password. */
export class BackendError extends Error {
  override name = 'BackendError'
  /**
   * Whether the same request may succeed when tried again (the service unreachable or busy, a
   * timeout), as kafkajs's errors say; false for what retrying cannot fix (a bad address or
   * password, a refused query, a closed backend).
   */
  readonly retriable: boolean

  constructor(
    message: string,
    readonly backend: string,
    readonly location: string,
    options?: {cause?: unknown; retriable?: boolean},
  ) {
    super(message, options)
    this.retriable = options?.retriable ?? false
  }
}

/**
 * The backend's writer retried a write after failures and then gave up (`--max-retry-time` ran
 * out, or the failure turned permanent): raised where it happens, so callers need not infer it.
 */
export class BackendGaveUpError extends BackendError {
  override name = 'BackendGaveUpError'
  constructor(failure: BackendError) {
    super(failure.message, failure.backend, failure.location, {cause: failure.cause, retriable: failure.retriable})
  }
}
