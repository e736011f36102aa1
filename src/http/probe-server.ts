import type http from 'node:http'
import type {AddressInfo} from 'node:net'
import type {Registry} from 'prom-client'
import {renderMetrics} from '../metrics/registry.js'
import {exposureWarning, listen, serverUrl} from './listen.js'
import {createWebServer, type WebServerOptions} from './web-server.js'

export type Readiness = {ready: true} | {ready: false; reason: string}

export interface ProbeServerOptions {
  registry: Registry
  /** Whether the process can do its work now (`/readyz`). */
  readiness: () => Readiness
  /** TLS, basic auth and limits (see {@link createWebServer}). */
  web?: Omit<WebServerOptions, 'observe'>
}

/**
 * What a long-running process serves next to its work, for Prometheus and an orchestrator:
 * `GET /metrics` (Prometheus text), `GET /healthz` (200 while the process runs: liveness) and
 * `GET /readyz` (200 when ready, else 503 with the reason: readiness). Nothing else.
 */
export class ProbeServer {
  readonly http: http.Server

  constructor(private readonly options: ProbeServerOptions) {
    this.http = createWebServer((request, response) => {
      this.answer(request, response).catch(() => {
        if (!response.headersSent) response.writeHead(500, {'content-type': 'application/json'})
        response.end('{"error":"internal server error"}\n')
      })
    }, options.web)
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return listen(this.http, port, host)
  }

  get url(): string {
    return serverUrl(this.http)
  }

  /** The warning for where it listens without the protection of a web config, if any (see {@link exposureWarning}). */
  get exposure(): string | undefined {
    const address = this.http.address()
    return address && typeof address !== 'string' ? exposureWarning(address.address, this.options.web?.webConfig) : undefined
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.http.close(() => resolve())
      this.http.closeAllConnections()
    })
  }

  private async answer(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://probe').pathname
    const json = (status: number, value: unknown) => {
      response.writeHead(status, {'content-type': 'application/json'})
      response.end(`${JSON.stringify(value)}\n`)
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD')
      return json(405, {error: `method ${request.method} not allowed`})
    }
    if (path === '/metrics') {
      const {body, contentType} = await renderMetrics(this.options.registry)
      response.writeHead(200, {'content-type': contentType})
      response.end(request.method === 'HEAD' ? undefined : body)
      return
    }
    if (path === '/healthz') return json(200, {status: 'ok'})
    if (path === '/readyz') {
      const readiness = this.options.readiness()
      return readiness.ready ? json(200, {status: 'ready'}) : json(503, {status: 'not ready', reason: readiness.reason})
    }
    json(404, {error: `no such path: ${path}`, paths: ['/metrics', '/healthz', '/readyz']})
  }
}
