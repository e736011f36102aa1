import http from 'node:http'
import type {AddressInfo} from 'node:net'
import {BackendError, type CountBackend, supportsRangeCounts} from '../backends/backend.js'
import {buildCountQuery, CountQueryError, type ParsedCountQuery, queryJson, type QueryOptionNames, type SeriesPoint} from '../query/count-query.js'
import {Counter, Gauge, Histogram, type Registry} from 'prom-client'
import {processRegistry, renderMetrics} from '../metrics/registry.js'
import {listen, serverUrl} from './listen.js'

export {ListenError} from './listen.js'
import {formatIsoMillis} from '../events/timestamp.js'
import {withTimeout} from '../util/async.js'
import {SingleFlightCache} from './single-flight-cache.js'
import {DASHBOARD_CONTENT_SECURITY_POLICY, dashboardFiles, type DashboardOptions} from './dashboard.js'

export const DEFAULT_PORT = 5001
export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_CACHE_MS = 1000
export const DEFAULT_BACKEND_TIMEOUT_MS = 2000
/** A failed count is remembered this long at most (never longer than the cache), then retried. */
export const MAX_ERROR_CACHE_MS = 500

/** The backend gave no answer within the time allowed for one call. */
export class BackendTimeoutError extends BackendError {
  override name = 'BackendTimeoutError'
  override readonly retriable = true
}

/** The server could not start listening (port in use, address not available). */
export interface AccessLogEntry {
  time: string
  method: string
  path: string
  status: number
  durationMs: number
}

export interface CountServerOptions {
  /**
   * Creates a fresh, unconnected backend. Called once at start, and again after a failure: the
   * failed instance is closed and the next request connects a new one, so the server recovers
   * whether or not the backend's client reconnects by itself.
   */
  createBackend: () => Promise<CountBackend>
  /** A successful count is reused for this long. Default 1000 ms; 0 disables reuse across requests. */
  cacheMs?: number
  /** Every backend call (connect, count, close) gives up after this long. Default 2000 ms. */
  requestTimeoutMs?: number
  /** Strings (passwords) replaced by `***` in every error message the server shows or logs. */
  secrets?: readonly string[]
  /** Operator messages: backend unavailable, backend available again. */
  log?: (message: string) => void
  /** Called once per answered request. */
  accessLog?: (entry: AccessLogEntry) => void
  /** Clock for the cache, epoch ms. Default `Date.now`. */
  now?: () => number
  /** Serve the dashboard page at `GET /` with these settings; undefined: no page. */
  dashboard?: DashboardOptions
}

type CountOutcome = {ok: true; count: number; completedAt: number} | {ok: false; error: BackendError; completedAt: number}

/** The answer to a range / error-code query; a CountQueryError is the query's fault (400), not the backend's. */
type RangeOutcome =
  | {ok: true; parsed: ParsedCountQuery; count: number; series?: SeriesPoint[]; completedAt: number}
  | {ok: false; error: BackendError | CountQueryError; completedAt: number}

/** Query parameters of /unique_ip_count, in the names the HTTP API uses. */
export const COUNT_PARAMETERS: QueryOptionNames = {since: 'since', until: 'until', errorCode: 'error_code', by: 'by'}
/** Distinct range queries whose answers are kept for the cache time. */
const MAX_CACHED_RANGE_QUERIES = 100

interface ServerMetrics {
  registry: Registry
  uniqueCount: Gauge
  backendUp: Gauge
  requests: Counter<'route' | 'status'>
  requestDuration: Histogram<'route'>
  backendQueries: Counter
  backendErrors: Counter<'operation' | 'reason'>
  cacheHits: Counter
  sharedQueries: Counter
}

const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** The metrics of `ipc serve`; their names are an interface (dashboards and alerts use them). */
function createServerMetrics(): ServerMetrics {
  const registry = processRegistry()
  const registers = [registry]
  const metrics: ServerMetrics = {
    registry,
    uniqueCount: new Gauge({name: 'ipc_unique_device_ip_count', help: 'Distinct device IPs, as last counted by the backend.', registers}),
    backendUp: new Gauge({name: 'ipc_backend_up', help: '1 when the last backend query succeeded, 0 when it failed.', registers}),
    requests: new Counter({
      name: 'ipc_http_requests_total',
      help: 'HTTP requests answered, by route and status code.',
      labelNames: ['route', 'status'],
      registers,
    }),
    requestDuration: new Histogram({
      name: 'ipc_http_request_duration_seconds',
      help: 'Time from request to the end of the response, by route.',
      labelNames: ['route'],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    }),
    backendQueries: new Counter({name: 'ipc_backend_queries_total', help: 'Count queries sent to the backend.', registers}),
    backendErrors: new Counter({
      name: 'ipc_backend_errors_total',
      help: 'Failed backend calls, by operation and reason.',
      labelNames: ['operation', 'reason'],
      registers,
    }),
    cacheHits: new Counter({name: 'ipc_count_cache_hits_total', help: 'Requests answered from the cached count without a backend query.', registers}),
    sharedQueries: new Counter({name: 'ipc_count_shared_queries_total', help: 'Requests that waited for a backend query already in flight.', registers}),
  }
  for (const operation of ['connect', 'count']) {
    for (const reason of ['error', 'timeout']) metrics.backendErrors.inc({operation, reason}, 0)
  }
  return metrics
}

function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return describeError(error.errors[0])
  if (error instanceof Error) return error.message || error.name
  return String(error)
}

/**
 * Owns the backend instance and answers "how many?" with a short cache, one shared in-flight query
 * (single-flight) and a timeout on every backend call.
 */
interface CountSourceOptions {
  createBackend: () => Promise<CountBackend>
  cacheMs: number
  errorCacheMs: number
  timeoutMs: number
  metrics: ServerMetrics
  redact: (text: string) => string
  log: (message: string) => void
  now: () => number
}

class CountSource {
  private backend: CountBackend | undefined
  private connected = false
  private readonly totals: SingleFlightCache<CountOutcome>
  private readonly ranges: SingleFlightCache<RangeOutcome>
  private readonly closingInstances = new Set<Promise<void>>()
  private closed = false
  backendName = 'unknown'
  backendLocation = 'unknown'
  backendExact = false

  constructor(private readonly options: CountSourceOptions) {
    const {cacheMs, errorCacheMs, now} = options
    this.totals = new SingleFlightCache({cacheMs, errorCacheMs, now, maxEntries: 1})
    this.ranges = new SingleFlightCache({cacheMs, errorCacheMs, now, maxEntries: MAX_CACHED_RANGE_QUERIES})
    for (const cache of [this.totals, this.ranges]) {
      cache.on('answered', (source) => {
        if (source === 'cache') options.metrics.cacheHits.inc()
        else if (source === 'shared') options.metrics.sharedQueries.inc()
      })
    }
  }

  /** Creates the first instance, so name and location are known; does not connect. */
  async init(): Promise<void> {
    this.backend = await this.options.createBackend()
    this.remember(this.backend)
  }

  /** The current count, from the cache, a query in flight, or a new query. Never rejects. */
  async current(): Promise<CountOutcome> {
    return (await this.totals.get('', () => this.query())).value
  }

  /**
   * The answer to a range / error-code query, cached and shared per `key` (the request's query
   * string) like the plain count. Never rejects.
   */
  async currentRange(key: string, parse: () => ParsedCountQuery): Promise<RangeOutcome> {
    return (await this.ranges.get(key, () => this.queryRange(parse))).value
  }

  /** Waits for the queries in flight, then closes the backend (bounded by the timeout). */
  async close(): Promise<void> {
    this.closed = true
    await Promise.all([this.totals.settled(), this.ranges.settled()])
    const backend = this.backend
    this.backend = undefined
    this.connected = false
    if (backend) this.closeQuietly(backend)
    await Promise.all(this.closingInstances)
  }

  private async query(): Promise<CountOutcome> {
    let operation: 'connect' | 'count' = 'connect'
    let outcome: CountOutcome
    try {
      if (this.closed) throw new BackendError('the server is shutting down', this.backendName, this.backendLocation)
      const backend = await this.connectedBackend()
      operation = 'count'
      this.options.metrics.backendQueries.inc()
      const count = await this.call(backend, () => backend.count(), 'count')
      if (!Number.isSafeInteger(count) || count < 0) {
        throw new BackendError(`${backend.name} returned an invalid count: ${String(count)}`, backend.name, backend.location)
      }
      outcome = {ok: true, count, completedAt: this.options.now()}
    } catch (error) {
      const backendError = this.toBackendError(error)
      this.options.metrics.backendErrors.inc({operation, reason: backendError instanceof BackendTimeoutError ? 'timeout' : 'error'})
      this.discardBackend()
      outcome = {ok: false, error: backendError, completedAt: this.options.now()}
    }
    this.record(outcome)
    return outcome
  }

  private async queryRange(parse: () => ParsedCountQuery): Promise<RangeOutcome> {
    let operation: 'connect' | 'count' = 'connect'
    try {
      // Relative bounds (since=24h) are read against the time of the query.
      const parsed = parse()
      if (this.closed) throw new BackendError('the server is shutting down', this.backendName, this.backendLocation)
      const backend = await this.connectedBackend()
      if (!supportsRangeCounts(backend)) throw new CountQueryError(`the ${backend.name} backend cannot count time ranges or error codes`)
      operation = 'count'
      this.options.metrics.backendQueries.inc()
      const {query, by} = parsed
      const [count, series] = await this.call(
        backend,
        () =>
          Promise.all([
            backend.countUnique(query),
            by && query.sinceMs !== undefined && query.untilMs !== undefined
              ? backend.countSeries({...query, sinceMs: query.sinceMs, untilMs: query.untilMs}, by)
              : undefined,
          ]),
        'count',
      )
      this.options.metrics.backendUp.set(1)
      return {ok: true, parsed, count, series, completedAt: this.options.now()}
    } catch (error) {
      if (error instanceof CountQueryError) return {ok: false, error, completedAt: this.options.now()}
      const backendError = this.toBackendError(error)
      this.options.metrics.backendErrors.inc({operation, reason: backendError instanceof BackendTimeoutError ? 'timeout' : 'error'})
      this.discardBackend()
      this.options.metrics.backendUp.set(0)
      return {ok: false, error: backendError, completedAt: this.options.now()}
    }
  }

  private async connectedBackend(): Promise<CountBackend> {
    if (!this.backend) {
      this.backend = await this.options.createBackend()
      this.remember(this.backend)
    }
    const backend = this.backend
    if (!this.connected) {
      await this.call(backend, () => backend.connect(), 'connect')
      this.connected = true
    }
    return backend
  }

  /** Runs one backend call under the timeout; a synchronous throw counts as a failure too. */
  private call<T>(backend: CountBackend, operation: () => Promise<T>, verb: string): Promise<T> {
    let pending: Promise<T>
    try {
      pending = operation()
    } catch (error) {
      return Promise.reject(error)
    }
    return withTimeout(
      pending,
      this.options.timeoutMs,
      () =>
        new BackendTimeoutError(
          `${backend.name} at ${backend.location} did not answer ${verb} within ${this.options.timeoutMs} ms`,
          backend.name,
          backend.location,
        ),
    )
  }

  private discardBackend(): void {
    const backend = this.backend
    this.backend = undefined
    this.connected = false
    if (backend) this.closeQuietly(backend)
  }

  private closeQuietly(backend: CountBackend): void {
    const closing = this.call(backend, () => backend.close(), 'close').then(
      () => {},
      () => {},
    )
    this.closingInstances.add(closing)
    void closing.finally(() => this.closingInstances.delete(closing))
  }

  private remember(backend: CountBackend): void {
    this.backendName = backend.name
    this.backendLocation = backend.location
    this.backendExact = backend.exact
  }

  private toBackendError(error: unknown): BackendError {
    const message = this.options.redact(describeError(error))
    if (error instanceof BackendTimeoutError) return new BackendTimeoutError(message, error.backend, this.options.redact(error.location))
    if (error instanceof BackendError)
      return new BackendError(message, error.backend, this.options.redact(error.location), {cause: error, retriable: error.retriable})
    return new BackendError(message, this.backendName, this.options.redact(this.backendLocation), {cause: error})
  }

  private record(outcome: CountOutcome): void {
    const previous = this.totals.last('')
    this.options.metrics.backendUp.set(outcome.ok ? 1 : 0)
    const where = `backend ${this.backendName} ${this.options.redact(this.backendLocation)}`
    if (outcome.ok) {
      this.options.metrics.uniqueCount.set(outcome.count)
      if (previous && !previous.ok) this.options.log(`${where} is available again`)
    } else if (!previous || previous.ok) {
      this.options.log(`${where} is unavailable: ${outcome.error.message}; answering 503 until it is back`)
    }
  }
}

interface Reply {
  status: number
  body: string
  contentType: string
  headers?: Record<string, string>
}

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8'
const ALLOWED_METHODS = 'GET, HEAD'

function jsonReply(status: number, value: unknown, headers?: Record<string, string>): Reply {
  return {status, body: `${JSON.stringify(value)}\n`, contentType: JSON_CONTENT_TYPE, headers}
}

function pathOf(url: string | undefined): string {
  const raw = url ?? '/'
  const end = raw.search(/[?#]/)
  return end === -1 ? raw : raw.slice(0, end)
}

/**
 * The unique-count HTTP API: `GET /unique_ip_count`, `GET /healthz`, `GET /metrics`, and with the
 * `dashboard` option the page at `GET /` that shows them.
 * Use {@link createCountServer}, then `listen`, and `close` to shut down cleanly.
 */
export class CountServer {
  readonly http: http.Server
  readonly metrics: ServerMetrics
  private readonly source: CountSource
  private readonly routes: Record<string, (url: URL) => Promise<Reply>>
  private readonly accessLog?: (entry: AccessLogEntry) => void
  private readonly timeoutMs: number
  private readonly redact: (text: string) => string
  private readonly now: () => number
  private closing: Promise<void> | undefined

  constructor(options: CountServerOptions) {
    const cacheMs = options.cacheMs ?? DEFAULT_CACHE_MS
    this.timeoutMs = options.requestTimeoutMs ?? DEFAULT_BACKEND_TIMEOUT_MS
    if (!(cacheMs >= 0)) throw new RangeError(`cacheMs must be >= 0, got ${cacheMs}`)
    if (!(this.timeoutMs > 0)) throw new RangeError(`requestTimeoutMs must be > 0, got ${this.timeoutMs}`)
    const secrets = (options.secrets ?? []).filter((secret) => secret.length > 0)
    const redact = (text: string): string => secrets.reduce((result, secret) => result.replaceAll(secret, '***'), text)
    this.redact = redact
    this.now = options.now ?? Date.now
    this.metrics = createServerMetrics()
    this.accessLog = options.accessLog
    this.source = new CountSource({
      createBackend: options.createBackend,
      cacheMs,
      errorCacheMs: Math.min(cacheMs, MAX_ERROR_CACHE_MS),
      timeoutMs: this.timeoutMs,
      metrics: this.metrics,
      redact,
      log: options.log ?? (() => {}),
      now: options.now ?? Date.now,
    })
    this.routes = {
      '/unique_ip_count': (url) => this.uniqueIpCount(url),
      '/healthz': () => this.healthz(),
      '/metrics': async () => ({status: 200, ...(await renderMetrics(this.metrics.registry))}),
    }
    if (options.dashboard) {
      for (const [path, file] of dashboardFiles(options.dashboard)) {
        const headers = path === '/' ? {'Content-Security-Policy': DASHBOARD_CONTENT_SECURITY_POLICY} : undefined
        this.routes[path] = async () => ({status: 200, body: file.body, contentType: file.contentType, headers})
      }
    }
    this.http = http.createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        options.log?.(`internal error answering ${request.method} ${pathOf(request.url)}: ${redact(describeError(error))}`)
        if (!response.headersSent) this.send(request, response, jsonReply(500, {error: 'internal server error'}))
        else response.destroy()
      })
    })
  }

  get backendName(): string {
    return this.source.backendName
  }

  get backendLocation(): string {
    return this.redact(this.source.backendLocation)
  }

  /** Creates the first backend instance; a factory error here (bad configuration) rejects. */
  async init(): Promise<void> {
    await this.source.init()
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free port). */
  listen(port = DEFAULT_PORT, host = DEFAULT_HOST): Promise<AddressInfo> {
    return listen(this.http, port, host)
  }

  /** `http://host:port` of the bound address. */
  get url(): string {
    return serverUrl(this.http)
  }

  /** Queries the backend once (connecting it), e.g. to report its state at start. */
  async probe(): Promise<{ok: true; count: number} | {ok: false; error: BackendError}> {
    const outcome = await this.source.current()
    return outcome.ok ? {ok: true, count: outcome.count} : {ok: false, error: outcome.error}
  }

  /**
   * Stops accepting connections, lets requests in flight finish (they are bounded by the backend
   * timeout; connections still open after that are cut), then closes the backend.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  private async shutdown(): Promise<void> {
    const stopped = new Promise<void>((resolve) => {
      if (!this.http.listening) resolve()
      else this.http.close(() => resolve())
    })
    this.http.closeIdleConnections()
    const cutOff = setTimeout(() => this.http.closeAllConnections(), this.timeoutMs * 2 + 1000)
    try {
      await stopped
    } finally {
      clearTimeout(cutOff)
    }
    await this.source.close()
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const started = process.hrtime.bigint()
    const path = pathOf(request.url)
    const known = Object.hasOwn(this.routes, path)
    const route = known ? path : 'other'
    response.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      this.metrics.requests.inc({route, status: String(response.statusCode)})
      this.metrics.requestDuration.observe({route}, seconds)
      this.accessLog?.({
        time: new Date().toISOString(),
        method: request.method ?? '',
        path,
        status: response.statusCode,
        durationMs: Math.round(seconds * 1e6) / 1e3,
      })
    })
    // The API takes no request body; drain any so the connection can be reused.
    request.resume()

    let reply: Reply
    if (!known) reply = jsonReply(404, {error: `no such path: ${path}`, paths: Object.keys(this.routes)})
    else if (request.method !== 'GET' && request.method !== 'HEAD') {
      reply = jsonReply(405, {error: `method ${request.method} not allowed on ${path}: use GET or HEAD`}, {Allow: ALLOWED_METHODS})
    } else reply = await this.routes[path](new URL(request.url ?? '/', 'http://localhost'))
    this.send(request, response, reply)
  }

  private send(request: http.IncomingMessage, response: http.ServerResponse, reply: Reply): void {
    const body = Buffer.from(reply.body)
    response.statusCode = reply.status
    response.setHeader('Content-Type', reply.contentType)
    response.setHeader('Content-Length', body.length)
    response.setHeader('Cache-Control', 'no-store')
    for (const [name, value] of Object.entries(reply.headers ?? {})) response.setHeader(name, value)
    if (this.closing) response.setHeader('Connection', 'close')
    if (request.method === 'HEAD') response.end()
    else response.end(body)
  }

  private unavailable(error: BackendError): Record<string, string> {
    return {error: error.message, backend: error.backend, location: error.location}
  }

  /**
   * Without query parameters: the all-time count, as always. With `since`, `until`, `error_code`
   * (repeatable or comma-separated) and `by` (hour|day), the same query as `ipc count` with those
   * flags, answered with the query and, for `by`, a `series`; invalid values answer 400. Other
   * parameters are ignored, as they always were (cache busters, `pretty`).
   */
  private async uniqueIpCount(url: URL): Promise<Reply> {
    const parameters = url.searchParams
    const accepted: string[] = Object.values(COUNT_PARAMETERS)
    if ([...parameters.keys()].some((name) => accepted.includes(name))) return this.rangeCount(parameters)
    const outcome = await this.source.current()
    if (outcome.ok) return jsonReply(200, {unique_device_ip_count: outcome.count})
    return jsonReply(503, this.unavailable(outcome.error), {'Retry-After': '1'})
  }

  private async rangeCount(parameters: URLSearchParams): Promise<Reply> {
    const accepted: string[] = Object.values(COUNT_PARAMETERS)
    for (const name of new Set(parameters.keys())) {
      if (name !== COUNT_PARAMETERS.errorCode && accepted.includes(name) && parameters.getAll(name).length > 1) {
        return jsonReply(400, {error: `query parameter "${name}" given more than once`})
      }
    }
    const input = {
      since: parameters.get(COUNT_PARAMETERS.since) ?? undefined,
      until: parameters.get(COUNT_PARAMETERS.until) ?? undefined,
      errorCodes: parameters.getAll(COUNT_PARAMETERS.errorCode).flatMap((value) => value.split(',')),
      by: parameters.get(COUNT_PARAMETERS.by) ?? undefined,
    }
    const key = [...parameters.entries()]
      .filter(([name]) => accepted.includes(name))
      .map(([name, value]) => `${name}=${value}`)
      .sort()
      .join('&')
    const outcome = await this.source.currentRange(key, () => buildCountQuery(input, this.now(), COUNT_PARAMETERS))
    if (!outcome.ok) {
      if (outcome.error instanceof CountQueryError) return jsonReply(400, {error: outcome.error.message})
      return jsonReply(503, this.unavailable(outcome.error), {'Retry-After': '1'})
    }
    const {query, by} = outcome.parsed
    const series = outcome.series?.map((point) => ({bucket: formatIsoMillis(point.startMs), count: point.count}))
    return jsonReply(200, {
      unique_device_ip_count: outcome.count,
      exact: this.source.backendExact,
      ...queryJson(query),
      ...(by && series ? {by, series} : {}),
    })
  }

  private async healthz(): Promise<Reply> {
    const outcome = await this.source.current()
    const backend = {backend: this.backendName, location: this.backendLocation, exact: this.source.backendExact}
    if (outcome.ok) return jsonReply(200, {status: 'ok', ...backend})
    return jsonReply(503, {status: 'unavailable', ...this.unavailable(outcome.error)}, {'Retry-After': '1'})
  }
}

/** Creates the server and its first (unconnected) backend instance; call `listen` next. */
export async function createCountServer(options: CountServerOptions): Promise<CountServer> {
  const server = new CountServer(options)
  await server.init()
  return server
}
