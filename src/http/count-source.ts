import {BackendError, type CountBackend, type FreshnessMeasure, supportsFreshness, supportsRangeCounts} from '../backends/backend.js'
import {errorReason} from '../util/errors.js'
import {CountQueryError, isBounded, type ParsedCountQuery, type SeriesPoint} from '../query/count-query.js'
import {BackendHolder, type BackendHolderOptions, BackendTimeoutError} from './backend-holder.js'
import type {BackendOperation, ServerMetrics} from './count-metrics.js'
import {SingleFlightCache} from './single-flight-cache.js'

export {BackendTimeoutError} from './backend-holder.js'

/**
 * What a request asks: the all-time count (no `parse`), or a range / error-code query that `parse`
 * reads when the backend is asked, so relative bounds (since=24h) are read against the time of the
 * query. `key` names the request in the cache: requests with the same key share one answer.
 */
export interface CountRequest {
  key: string
  parse?: () => ParsedCountQuery
}

export type RangeRequest = Required<CountRequest>

/** The all-time count. */
export const TOTAL_COUNT = {key: ''} as const satisfies CountRequest

export interface CountAnswer {
  ok: true
  count: number
  /** The query of a range request; undefined for the all-time count. */
  parsed?: ParsedCountQuery
  /** The series of a range request with `by`. */
  series?: SeriesPoint[]
  completedAt: number
}

/** The answer to a range request, which always carries its query. */
export type RangeAnswer = CountAnswer & {parsed: ParsedCountQuery}

/** A BackendError is the backend's fault (503); a CountQueryError is the request's (400), and only a range request gets one. */
export interface CountFailure<E extends Error = BackendError | CountQueryError> {
  ok: false
  error: E
  completedAt: number
}

export type CountOutcome<E extends Error = BackendError | CountQueryError> = CountAnswer | CountFailure<E>

/** How fresh the backend's data is: `atMs` undefined while nothing is stored; `measure` undefined for a backend that cannot tell. */
export type FreshnessOutcome =
  {ok: true; measure: FreshnessMeasure | undefined; atMs: number | undefined; completedAt: number} | {ok: false; error: BackendError; completedAt: number}

/** Distinct range queries whose answers are kept for the cache time (the all-time count has a slot of its own). */
const MAX_CACHED_RANGE_QUERIES = 100

export interface CountSourceOptions extends BackendHolderOptions {
  /** How long a successful answer is reused. */
  cacheMs: number
  /** How long a failed answer is reused. */
  errorCacheMs: number
  metrics: ServerMetrics
  /** Removes secrets from a text shown or logged. */
  redact: (text: string) => string
  /** Operator messages: backend unavailable, backend available again. */
  log: (message: string) => void
  now: () => number
}

/**
 * Answers every request, the all-time count and range queries alike, through one path: a short
 * cache and one shared query in flight per request key (single flight), then one call on the
 * backend instance of a {@link BackendHolder}, under its timeout.
 */
export class CountSource {
  private readonly backends: BackendHolder
  private readonly totals: SingleFlightCache<CountOutcome>
  private readonly ranges: SingleFlightCache<CountOutcome>
  private readonly freshnessCache: SingleFlightCache<FreshnessOutcome>
  private closed = false

  constructor(private readonly options: CountSourceOptions) {
    const {cacheMs, errorCacheMs, now} = options
    this.backends = new BackendHolder(options)
    this.totals = new SingleFlightCache({cacheMs, errorCacheMs, now, maxEntries: 1})
    this.ranges = new SingleFlightCache({cacheMs, errorCacheMs, now, maxEntries: MAX_CACHED_RANGE_QUERIES})
    this.freshnessCache = new SingleFlightCache({cacheMs, errorCacheMs, now, maxEntries: 1})
    for (const cache of [this.totals, this.ranges]) {
      cache.on('answered', (source) => {
        if (source === 'cache') options.metrics.cacheHits.inc()
        else if (source === 'shared') options.metrics.sharedQueries.inc()
      })
    }
  }

  get backendName(): string {
    return this.backends.name
  }

  /** Where the backend is, with secrets removed. */
  get backendLocation(): string {
    return this.options.redact(this.backends.location)
  }

  get backendExact(): boolean {
    return this.backends.exact
  }

  /** Creates the first backend instance, so name and location are known; does not connect. */
  async init(): Promise<void> {
    await this.backends.init()
  }

  /** The answer to a request, from the cache, a query in flight, or a new query. Never rejects. */
  count(request: typeof TOTAL_COUNT): Promise<CountOutcome<BackendError>>
  count(request: RangeRequest): Promise<RangeAnswer | CountFailure>
  async count(request: CountRequest): Promise<CountOutcome> {
    const cache = request.parse ? this.ranges : this.totals
    return (await cache.get(request.key, () => this.query(request.parse))).value
  }

  /**
   * The newest event's time or the last write's ({@link FreshnessBackend}), through the same cache,
   * backend instance and timeout as the counts. Never rejects.
   */
  async freshness(): Promise<FreshnessOutcome> {
    return (await this.freshnessCache.get('', () => this.queryFreshness())).value
  }

  /** Waits for the queries in flight, then closes the backend (bounded by the timeout). */
  async close(): Promise<void> {
    this.closed = true
    await Promise.all([this.totals.settled(), this.ranges.settled(), this.freshnessCache.settled()])
    await this.backends.close()
  }

  private async query(parse: (() => ParsedCountQuery) | undefined): Promise<CountOutcome> {
    const {metrics, now} = this.options
    let operation: BackendOperation = 'connect'
    let backend: CountBackend | undefined
    let outcome: CountOutcome
    try {
      const parsed = parse?.()
      if (this.closed) throw new BackendError('the server is shutting down', this.backends.name, this.backends.location)
      backend = await this.backends.connectedBackend()
      const ask = backendCall(backend, parsed)
      operation = 'count'
      metrics.backendQueries.inc()
      const {count, series} = await this.backends.call(backend, ask, 'count')
      if (!Number.isSafeInteger(count) || count < 0) {
        const {name, location} = backend
        throw new BackendError(`${name} returned an invalid count: ${String(count)}`, name, location)
      }
      outcome = {ok: true, count, parsed, series, completedAt: now()}
    } catch (error) {
      if (parse && error instanceof CountQueryError) return {ok: false, error, completedAt: now()}
      const backendError = this.toBackendError(error)
      metrics.backendErrors.inc({operation, reason: backendError instanceof BackendTimeoutError ? 'timeout' : 'error'})
      if (backend) this.backends.discard(backend)
      outcome = {ok: false, error: backendError, completedAt: now()}
    }
    this.record(outcome, parse === undefined)
    return outcome
  }

  private async queryFreshness(): Promise<FreshnessOutcome> {
    const {now} = this.options
    let backend: CountBackend | undefined
    try {
      if (this.closed) throw new BackendError('the server is shutting down', this.backends.name, this.backends.location)
      backend = await this.backends.connectedBackend()
      if (!supportsFreshness(backend)) return {ok: true, measure: undefined, atMs: undefined, completedAt: now()}
      const fresh = backend
      const atMs = await this.backends.call(fresh, () => fresh.freshness(), 'freshness')
      return {ok: true, measure: fresh.freshnessMeasure, atMs, completedAt: now()}
    } catch (error) {
      if (backend) this.backends.discard(backend)
      return {ok: false, error: this.toBackendError(error), completedAt: now()}
    }
  }

  private toBackendError(error: unknown): BackendError {
    const {redact} = this.options
    const message = redact(errorReason(error))
    if (error instanceof BackendTimeoutError) return new BackendTimeoutError(message, error.backend, redact(error.location))
    if (error instanceof BackendError) return new BackendError(message, error.backend, redact(error.location), {cause: error, retriable: error.retriable})
    return new BackendError(message, this.backends.name, this.backendLocation, {cause: error})
  }

  /**
   * `ipc_backend_up` follows every backend answer; the all-time count also sets
   * `ipc_unique_device_ip_count` and tells the operator when the backend goes away or comes back.
   */
  private record(outcome: CountOutcome, total: boolean): void {
    const {metrics, log} = this.options
    metrics.backendUp.set(outcome.ok ? 1 : 0)
    if (!total) return
    const previous = this.totals.last(TOTAL_COUNT.key)
    const where = `backend ${this.backends.name} ${this.backendLocation}`
    if (outcome.ok) {
      metrics.uniqueCount.set(outcome.count)
      if (previous && !previous.ok) log(`${where} is available again`)
    } else if (!previous || previous.ok) {
      log(`${where} is unavailable: ${outcome.error.message}; answering 503 until it is back`)
    }
  }
}

/**
 * The one backend call a request needs: the all-time count, or the range count with, for `by`, its
 * series. A backend that cannot count ranges refuses a range request before any call (CountQueryError).
 */
function backendCall(backend: CountBackend, parsed: ParsedCountQuery | undefined): () => Promise<{count: number; series?: SeriesPoint[]}> {
  if (!parsed) return async () => ({count: await backend.count()})
  if (!supportsRangeCounts(backend)) throw new CountQueryError(`the ${backend.name} backend cannot count time ranges or error codes`)
  const {query, by} = parsed
  return async () => {
    const [count, series] = await Promise.all([backend.countUnique(query), by && isBounded(query) ? backend.countSeries(query, by) : undefined])
    return {count, series}
  }
}
