import type {EventEmitter} from 'node:events'
import {readFileSync} from 'node:fs'
import type {BoundedCountQuery, BucketSize, CountQuery, SeriesPoint} from '../query/count-query.js'
import {sleep} from '../util/async.js'

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
 */
export interface CountBackend extends Pick<EventEmitter<BackendEvents>, 'on' | 'off'> {
  /** Registry name: `redis`, `clickhouse`, `memory`. */
  readonly name: string
  /** Whether `count()` is exact (true) or an estimate (false). */
  readonly exact: boolean
  /** Human-readable location for messages, without credentials (e.g. `redis://127.0.0.1:6379`). */
  readonly location: string
  /** Connects and creates what is missing (keys need nothing; ClickHouse database/table). */
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
  /** Flushes and releases connections and timers. */
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

/** Reads the PEM CA bundle a backend's TLS connections trust; a BackendError naming the file if it cannot. */
export function readCaFile(file: string, service: string, backend: string, location: string): Buffer {
  try {
    return readFileSync(file)
  } catch (error) {
    throw new BackendError(`cannot read the ${service} CA file ${file}: ${(error as NodeJS.ErrnoException).code}`, backend, location)
  }
}

/** Re-emits a part's health events (e.g. its BatchWriter's) as the backend's own. */
export function relayBackendEvents(from: EventEmitter<BackendEvents>, to: EventEmitter<BackendEvents>): void {
  from.on('write-failed', (error) => to.emit('write-failed', error))
  from.on('write-recovered', (failedForMs) => to.emit('write-recovered', failedForMs))
  from.on('written', (events, durationMs) => to.emit('written', events, durationMs))
  from.on('write-gave-up', (error) => to.emit('write-gave-up', error))
}

export function supportsRangeCounts(backend: CountBackend): backend is RangeCountBackend {
  const candidate = backend as Partial<RangeCountBackend>
  return typeof candidate.countUnique === 'function' && typeof candidate.countSeries === 'function'
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

/**
 * Removes the password (and user name) from a URL so it can appear in messages and logs.
 * A string that is not a valid URL is returned with anything between `//` and `@` cut out.
 */
export function urlWithoutCredentials(url: string): string {
  try {
    const parsed = new URL(url)
    if (!parsed.username && !parsed.password) return url
    parsed.username = ''
    parsed.password = ''
    const text = parsed.toString()
    // WHATWG URLs gain a `/` path on http(s); keep the form the user wrote.
    return text.endsWith('/') && !url.endsWith('/') ? text.slice(0, -1) : text
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//')
  }
}

/** How a backend retries a failed write: capped exponential backoff, optionally bounded in time. */
export interface RetryPolicy {
  /** Wait before the first retry. */
  initialDelayMs: number
  /** Longest wait between two attempts. */
  maxDelayMs: number
  /** Give up once this much time passed since the first failure; undefined retries forever. */
  maxRetryTimeMs?: number
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {initialDelayMs: 200, maxDelayMs: 5000}

/** The wait before retry number `retry` (1-based): doubles from `initialDelayMs` up to `maxDelayMs`. */
export function backoffDelayMs(policy: RetryPolicy, retry: number): number {
  const exponent = Math.min(Math.max(retry - 1, 0), 30)
  return Math.min(policy.initialDelayMs * 2 ** exponent, policy.maxDelayMs)
}

/**
 * Runs `attempt` until it succeeds. Each failure is passed to `onFailure` together with the wait
 * before the next attempt. Rejects with the failure when `isRetryable` says it is permanent, when
 * `policy.maxRetryTimeMs` has passed since the first failure, or with `signal.reason` when `signal`
 * aborts (e.g. the backend closes).
 */
export async function retryWithBackoff<T>(
  attempt: () => Promise<T>,
  options: {
    policy: RetryPolicy
    onFailure: (error: unknown, retryInMs: number) => void
    isRetryable?: (error: unknown) => boolean
    signal?: AbortSignal
  },
): Promise<T> {
  const {policy, onFailure, isRetryable, signal} = options
  let firstFailureAt: number | undefined
  for (let retry = 1; ; retry++) {
    if (signal?.aborted) throw signal.reason
    try {
      return await attempt()
    } catch (error) {
      if (signal?.aborted) throw signal.reason
      if (isRetryable && !isRetryable(error)) throw error
      firstFailureAt ??= Date.now()
      const elapsed = Date.now() - firstFailureAt
      if (policy.maxRetryTimeMs !== undefined && elapsed >= policy.maxRetryTimeMs) throw error
      let delay = backoffDelayMs(policy, retry)
      if (policy.maxRetryTimeMs !== undefined) delay = Math.min(delay, policy.maxRetryTimeMs - elapsed)
      onFailure(error, delay)
      await sleep(delay, signal)
    }
  }
}
