import type http from 'node:http'
import type {AddressInfo} from 'node:net'
import type {BackendError, CountBackend} from '../backends/backend.js'
import {createServerMetrics, type ServerMetrics} from './count-metrics.js'
import {CountRouter, jsonReply, pathOf, type Reply} from './count-router.js'
import {CountSource, TOTAL_COUNT} from './count-source.js'
import {errorReason} from '../util/errors.js'
import type {DashboardOptions} from './dashboard.js'
import {exposureWarning, listen, serverUrl} from './listen.js'
import type {WebConfig} from './web-config.js'
import {createWebServer, type WebServerOptions} from './web-server.js'
import {PipelineSource, type PipelineSourceOptions} from './pipeline-source.js'

export {BackendTimeoutError} from './backend-holder.js'
export {ListenError} from './listen.js'

export const DEFAULT_PORT = 5001
export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_CACHE_MS = 1000
export const DEFAULT_BACKEND_TIMEOUT_MS = 2000
/** A failed count is remembered this long at most (never longer than the cache), then retried. */
export const MAX_ERROR_CACHE_MS = 500

/** One answered request, as the access log gets it. */
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
  /** TLS, basic auth and limits (see {@link createWebServer}). */
  web?: Omit<WebServerOptions, 'observe'>
  /** The consumer group whose lag `GET /pipeline` and the dashboard show; undefined: lag not configured. */
  lag?: PipelineSourceOptions['lag']
}

/**
 * The unique-count HTTP API: the HTTP server, with the routes of {@link CountRouter}, answering
 * from a {@link CountSource}, and counting every request in its metrics and access log.
 * Use {@link createCountServer}, then `listen`, and `close` to shut down cleanly.
 */
export class CountServer {
  readonly http: http.Server
  readonly metrics: ServerMetrics
  private readonly source: CountSource
  private readonly pipeline: PipelineSource
  private readonly router: CountRouter
  private readonly accessLog?: (entry: AccessLogEntry) => void
  private readonly timeoutMs: number
  private readonly webConfig?: WebConfig
  private closing: Promise<void> | undefined

  constructor(options: CountServerOptions) {
    const cacheMs = options.cacheMs ?? DEFAULT_CACHE_MS
    this.timeoutMs = options.requestTimeoutMs ?? DEFAULT_BACKEND_TIMEOUT_MS
    if (!(cacheMs >= 0)) throw new RangeError(`cacheMs must be >= 0, got ${cacheMs}`)
    if (!(this.timeoutMs > 0)) throw new RangeError(`requestTimeoutMs must be > 0, got ${this.timeoutMs}`)
    const secrets = (options.secrets ?? []).filter((secret) => secret.length > 0)
    const redact = (text: string): string => secrets.reduce((result, secret) => result.replaceAll(secret, '***'), text)
    const now = options.now ?? Date.now
    this.metrics = createServerMetrics()
    this.accessLog = options.accessLog
    this.webConfig = options.web?.webConfig
    this.source = new CountSource({
      createBackend: options.createBackend,
      cacheMs,
      errorCacheMs: Math.min(cacheMs, MAX_ERROR_CACHE_MS),
      timeoutMs: this.timeoutMs,
      metrics: this.metrics,
      redact,
      log: options.log ?? (() => {}),
      now,
    })
    this.pipeline = new PipelineSource({
      counts: this.source,
      lag: options.lag,
      cacheMs,
      errorCacheMs: Math.min(cacheMs, MAX_ERROR_CACHE_MS),
      redact,
      log: options.log ?? (() => {}),
      now,
    })
    this.router = new CountRouter({source: this.source, pipeline: this.pipeline, metrics: this.metrics, now, dashboard: options.dashboard})
    const answer = (request: http.IncomingMessage, response: http.ServerResponse): void => {
      this.handle(request, response).catch((error: unknown) => {
        options.log?.(`internal error answering ${request.method} ${pathOf(request.url)}: ${redact(errorReason(error))}`)
        if (!response.headersSent) this.send(request, response, jsonReply(500, {error: 'internal server error'}))
        else response.destroy()
      })
    }
    this.http = createWebServer(answer, {...options.web, observe: (request, response) => this.observe(request, response)})
  }

  get backendName(): string {
    return this.source.backendName
  }

  /** Where the backend is, with secrets removed. */
  get backendLocation(): string {
    return this.source.backendLocation
  }

  /** Creates the first backend instance; a factory error here (bad configuration) rejects. */
  async init(): Promise<void> {
    await this.source.init()
  }

  /** Starts listening; resolves with the bound address (port 0 picks a free port). */
  listen(port = DEFAULT_PORT, host = DEFAULT_HOST): Promise<AddressInfo> {
    return listen(this.http, port, host)
  }

  /** `http://host:port` (`https://` with TLS) of the bound address. */
  get url(): string {
    return serverUrl(this.http)
  }

  /** The warning for where it listens without the protection of a web config, if any (see {@link exposureWarning}). */
  get exposure(): string | undefined {
    const address = this.http.address()
    return address && typeof address !== 'string' ? exposureWarning(address.address, this.webConfig) : undefined
  }

  /** Queries the backend once (connecting it), e.g. to report its state at start. */
  async probe(): Promise<{ok: true; count: number} | {ok: false; error: BackendError}> {
    const outcome = await this.source.count(TOTAL_COUNT)
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
    await this.pipeline.close()
    await this.source.close()
  }

  /** Counts every request, also those refused before a route (401, 413, 503), in the metrics and the access log. */
  private observe(request: http.IncomingMessage, response: http.ServerResponse): void {
    const started = process.hrtime.bigint()
    const path = pathOf(request.url)
    const route = this.router.routeOf(path)
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
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    this.send(request, response, await this.router.reply(request.method, request.url))
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
}

/** Creates the server and its first (unconnected) backend instance; call `listen` next. */
export async function createCountServer(options: CountServerOptions): Promise<CountServer> {
  const server = new CountServer(options)
  await server.init()
  return server
}
