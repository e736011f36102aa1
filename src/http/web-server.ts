import http from 'node:http'
import https from 'node:https'
import type net from 'node:net'
import type {TLSSocket} from 'node:tls'
import {BasicAuth, WWW_AUTHENTICATE} from './web-auth.js'
import type {WebConfig} from './web-config.js'
import {CONNECTIONS_PER_REQUEST, DEFAULT_HTTP_LIMITS, type HttpLimits, KEEP_ALIVE_TIMEOUT_MS, MAX_BODY_BYTES, MAX_HEADER_BYTES} from './web-limits.js'
import {acceptsPeer, peerCertificateOf, tlsServerOptions} from './web-tls.js'

export interface WebServerOptions {
  /** TLS, client certificates and basic auth; undefined: plain HTTP, no authentication. */
  webConfig?: WebConfig
  limits?: HttpLimits
  /** Called first for every request, also those the server refuses (401, 413, 503), e.g. to count it. */
  observe?: (request: http.IncomingMessage, response: http.ServerResponse) => void
}

type BodyState = 'read' | 'too-large' | 'aborted'

/** Reads and drops a request's body, up to {@link MAX_BODY_BYTES}. */
function dropBody(request: http.IncomingMessage): Promise<BodyState> {
  if (Number(request.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return Promise.resolve('too-large')
  return new Promise((resolve) => {
    let bytes = 0
    request.on('data', (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > MAX_BODY_BYTES) resolve('too-large')
    })
    request.once('end', () => resolve(bytes > MAX_BODY_BYTES ? 'too-large' : 'read'))
    request.once('close', () => resolve('aborted'))
    request.resume()
  })
}

function refuse(request: http.IncomingMessage, response: http.ServerResponse, status: number, error: string, headers: Record<string, string>): void {
  const body = `${JSON.stringify({error})}\n`
  response.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...headers,
  })
  response.end(request.method === 'HEAD' ? undefined : body)
}

/**
 * What stands before every route of a server: the cap on requests in flight (503), the body cap
 * (413), then basic auth (401, the same answer for an unknown user and a wrong password).
 */
class RequestGate {
  private inFlight = 0
  private readonly auth?: BasicAuth

  constructor(
    private readonly maxRequests: number,
    webConfig: WebConfig | undefined,
    private readonly observe?: WebServerOptions['observe'],
  ) {
    if (webConfig && webConfig.users.size > 0) this.auth = new BasicAuth(webConfig.users)
  }

  async pass(request: http.IncomingMessage, response: http.ServerResponse, next: http.RequestListener): Promise<void> {
    request.socket.setTimeout(0)
    this.observe?.(request, response)
    this.inFlight += 1
    response.once('close', () => (this.inFlight -= 1))
    if (this.inFlight > this.maxRequests) {
      return refuse(request, response, 503, `more than ${this.maxRequests} requests in flight; retry later`, {'Retry-After': '1'})
    }
    const body = await dropBody(request)
    if (body === 'aborted') return
    if (body === 'too-large') return refuse(request, response, 413, `request body over ${MAX_BODY_BYTES} bytes`, {Connection: 'close'})
    if (this.auth && !(await this.auth.allows(request.headers.authorization))) {
      return refuse(request, response, 401, 'unauthorized', {'WWW-Authenticate': WWW_AUTHENTICATE})
    }
    next(request, response)
  }
}

/**
 * An HTTP server, or HTTPS with the web config's TLS, that answers `handler` behind the limits,
 * client-certificate check and basic auth of {@link WebServerOptions}: the one way both `ipc
 * serve` and `ipc consume --metrics-port` make their server.
 */
export function createWebServer(handler: http.RequestListener, options: WebServerOptions = {}): http.Server {
  const limits = options.limits ?? DEFAULT_HTTP_LIMITS
  const tls = options.webConfig?.tls
  const gate = new RequestGate(limits.maxRequests, options.webConfig, options.observe)
  const listener: http.RequestListener = (request, response) => {
    gate.pass(request, response, handler).catch(() => response.destroy())
  }
  const serverOptions: http.ServerOptions = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    maxHeaderSize: MAX_HEADER_BYTES,
    // How often Node looks for connections past their time-outs: a cut comes at most this late.
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs / 2),
  }
  const server = tls
    ? https.createServer({...serverOptions, ...tlsServerOptions(tls), handshakeTimeout: limits.headersTimeoutMs}, listener)
    : http.createServer(serverOptions, listener)
  server.maxConnections = CONNECTIONS_PER_REQUEST * limits.maxRequests
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS
  // Node's header time-out starts with a request's first byte: a connection that sends nothing would keep its place for ever.
  server.on(tls ? 'secureConnection' : 'connection', (socket: net.Socket) => socket.setTimeout(limits.headersTimeoutMs))
  if (tls && tls.clientAuth !== 'NoClientCert' && tls.clientAuth !== 'RequestClientCert') {
    server.on('secureConnection', (socket: TLSSocket) => {
      if (!acceptsPeer(tls.clientAuth, peerCertificateOf(socket))) socket.destroy()
    })
  }
  return server
}
