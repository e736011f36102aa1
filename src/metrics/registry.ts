import {collectDefaultMetrics, Registry} from 'prom-client'

/**
 * A Prometheus registry of its own (never prom-client's global one) with the process metrics every
 * `ipc` server exposes: CPU seconds, resident memory, event-loop lag, GC time and open handles
 * (`process_*`, `nodejs_*`).
 */
export function processRegistry(): Registry {
  const registry = new Registry()
  collectDefaultMetrics({register: registry})
  return registry
}

/** Renders a registry for a `/metrics` answer. */
export async function renderMetrics(registry: Registry): Promise<{body: string; contentType: string}> {
  return {body: await registry.metrics(), contentType: registry.contentType}
}
