import type {ConsumerIdentity, MetricsBackend, MetricsPipeline} from '../metrics/consumer-metrics.js'
import type {ProbeServer} from './probe-server.js'
import type {WebServerOptions} from './web-server.js'

export interface ConsumerProbesOptions {
  pipeline: MetricsPipeline
  backend: MetricsBackend
  identity: ConsumerIdentity
  port: number
  host: string
  web?: Omit<WebServerOptions, 'observe'>
  log: (line: string) => void
}

/**
 * Starts `ipc consume --metrics-port`'s server (/metrics, /healthz, /readyz) and says where it
 * listens, and when it is reachable from others without TLS. Its modules load only here:
 * prom-client would add to every start-up.
 */
export async function startConsumerProbes(options: ConsumerProbesOptions): Promise<ProbeServer> {
  const [{ConsumerMetrics}, {ProbeServer}] = await Promise.all([import('../metrics/consumer-metrics.js'), import('./probe-server.js')])
  const metrics = new ConsumerMetrics(options.pipeline, options.backend, options.identity)
  const probes = new ProbeServer({registry: metrics.registry, readiness: () => options.pipeline.readiness(), web: options.web})
  await probes.listen(options.port, options.host)
  options.log(`ipc consume: metrics on ${probes.url}/metrics (health: /healthz, /readyz)`)
  if (probes.exposure) options.log(`ipc consume: ${probes.exposure}`)
  return probes
}
