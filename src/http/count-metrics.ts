import {Counter, Gauge, Histogram, type Registry} from 'prom-client'
import {processRegistry} from '../metrics/registry.js'

/** The metrics of `ipc serve`, in their own registry next to the process metrics. */
export interface ServerMetrics {
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

/** A backend call that can fail, as the `operation` label of `ipc_backend_errors_total` names it. */
export type BackendOperation = 'connect' | 'count'

const LATENCY_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** The metrics of `ipc serve`; their names are an interface (dashboards and alerts use them). */
export function createServerMetrics(): ServerMetrics {
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
  for (const operation of ['connect', 'count'] satisfies BackendOperation[]) {
    for (const reason of ['error', 'timeout']) metrics.backendErrors.inc({operation, reason}, 0)
  }
  return metrics
}
