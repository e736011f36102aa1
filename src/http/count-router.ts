import type {BackendError} from '../backends/backend.js'
import {formatIsoMillis} from '../events/timestamp.js'
import {buildCountQuery, CountQueryError, queryJson, type QueryOptionNames} from '../query/count-query.js'
import {renderMetrics} from '../metrics/registry.js'
import type {ServerMetrics} from './count-metrics.js'
import {type CountSource, TOTAL_COUNT} from './count-source.js'
import {DASHBOARD_CONTENT_SECURITY_POLICY, dashboardFiles, type DashboardOptions} from './dashboard.js'
import type {PipelineSource} from './pipeline-source.js'

/** What the server sends for one request (HEAD sends the same without the body). */
export interface Reply {
  status: number
  body: string
  contentType: string
  headers?: Record<string, string>
}

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8'
const ALLOWED_METHODS = 'GET, HEAD'
const RETRY_AFTER = {'Retry-After': '1'}

/** Query parameters of /unique_ip_count, in the names the HTTP API uses. */
const COUNT_PARAMETERS: QueryOptionNames = {since: 'since', until: 'until', errorCode: 'error_code', by: 'by'}
const ACCEPTED_PARAMETERS: readonly string[] = Object.values(COUNT_PARAMETERS)

export function jsonReply(status: number, value: unknown, headers?: Record<string, string>): Reply {
  return {status, body: `${JSON.stringify(value)}\n`, contentType: JSON_CONTENT_TYPE, headers}
}

/** The path of a request target, without its query string or fragment. */
export function pathOf(url: string | undefined): string {
  const raw = url ?? '/'
  const end = raw.search(/[?#]/)
  return end === -1 ? raw : raw.slice(0, end)
}

export interface CountRouterOptions {
  source: CountSource
  /** Answers `GET /pipeline`: the group's lag and the backend's freshness. */
  pipeline: PipelineSource
  metrics: ServerMetrics
  /** Clock for relative time bounds (since=24h), epoch ms. */
  now: () => number
  /** Serve the dashboard page at `GET /` with these settings; undefined: no page. */
  dashboard?: DashboardOptions
}

/**
 * The routes of `ipc serve`: `GET /unique_ip_count`, `GET /pipeline`, `GET /healthz`, `GET /metrics`, and with the
 * `dashboard` option the page at `GET /` and its files. Unknown paths answer 404, other methods 405;
 * every count goes through the source (cache, single flight, backend timeout).
 */
export class CountRouter {
  private readonly routes: Record<string, (url: URL) => Promise<Reply>>

  constructor(private readonly options: CountRouterOptions) {
    this.routes = {
      '/unique_ip_count': (url) => this.uniqueIpCount(url.searchParams),
      '/pipeline': async () => jsonReply(200, await options.pipeline.status()),
      '/healthz': () => this.healthz(),
      '/metrics': async () => ({status: 200, ...(await renderMetrics(options.metrics.registry))}),
    }
    if (options.dashboard) {
      for (const [path, file] of dashboardFiles(options.dashboard)) {
        const headers = path === '/' ? {'Content-Security-Policy': DASHBOARD_CONTENT_SECURITY_POLICY} : undefined
        this.routes[path] = async () => ({status: 200, body: file.body, contentType: file.contentType, headers})
      }
    }
  }

  /** The `route` label of a path in the request metrics: the path itself when it is a route, else `other`. */
  routeOf(path: string): string {
    return Object.hasOwn(this.routes, path) ? path : 'other'
  }

  /** The reply to one request. */
  async reply(method: string | undefined, url: string | undefined): Promise<Reply> {
    const path = pathOf(url)
    if (!Object.hasOwn(this.routes, path)) return jsonReply(404, {error: `no such path: ${path}`, paths: Object.keys(this.routes)})
    if (method !== 'GET' && method !== 'HEAD') {
      return jsonReply(405, {error: `method ${method} not allowed on ${path}: use GET or HEAD`}, {Allow: ALLOWED_METHODS})
    }
    return this.routes[path](new URL(url ?? '/', 'http://localhost'))
  }

  /**
   * Without query parameters: the all-time count. With `since`, `until`, `error_code` (repeatable or
   * comma-separated) and `by` (hour|day), the same query as `ipc count` with those flags, answered
   * with the query and, for `by`, a `series`; invalid values answer 400. Other parameters (cache
   * busters, `pretty`) are ignored.
   */
  private async uniqueIpCount(parameters: URLSearchParams): Promise<Reply> {
    const names = [...parameters.keys()]
    if (!names.some((name) => ACCEPTED_PARAMETERS.includes(name))) {
      const outcome = await this.options.source.count(TOTAL_COUNT)
      return outcome.ok ? jsonReply(200, {unique_device_ip_count: outcome.count}) : failureReply(outcome.error)
    }
    for (const name of new Set(names)) {
      if (name !== COUNT_PARAMETERS.errorCode && ACCEPTED_PARAMETERS.includes(name) && parameters.getAll(name).length > 1) {
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
      .filter(([name]) => ACCEPTED_PARAMETERS.includes(name))
      .map(([name, value]) => `${name}=${value}`)
      .sort()
      .join('&')
    const {source, now} = this.options
    const outcome = await source.count({key, parse: () => buildCountQuery(input, now(), COUNT_PARAMETERS)})
    if (!outcome.ok) return failureReply(outcome.error)
    const {query, by} = outcome.parsed
    const series = outcome.series?.map((point) => ({bucket: formatIsoMillis(point.startMs), count: point.count}))
    return jsonReply(200, {
      unique_device_ip_count: outcome.count,
      exact: source.backendExact,
      ...queryJson(query),
      ...(by && series ? {by, series} : {}),
    })
  }

  private async healthz(): Promise<Reply> {
    const {source} = this.options
    const outcome = await source.count(TOTAL_COUNT)
    if (outcome.ok) return jsonReply(200, {status: 'ok', backend: source.backendName, location: source.backendLocation, exact: source.backendExact})
    return jsonReply(503, {status: 'unavailable', ...unavailable(outcome.error)}, RETRY_AFTER)
  }
}

function unavailable(error: BackendError): Record<string, string> {
  return {error: error.message, backend: error.backend, location: error.location}
}

/** A request the source could not answer: the request's fault (400) or the backend's (503, retry in a second). */
function failureReply(error: BackendError | CountQueryError): Reply {
  if (error instanceof CountQueryError) return jsonReply(400, {error: error.message})
  return jsonReply(503, unavailable(error), RETRY_AFTER)
}
