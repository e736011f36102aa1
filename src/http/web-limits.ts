import {HttpLimitsError} from './web-errors.js'

/** What a server on a network must bound (docs/serve.md, "Limits", has the measurements behind the defaults). */
export interface HttpLimits {
  /** A client must send its request's headers within this time (also the TLS handshake), else 408 and the connection is closed. */
  headersTimeoutMs: number
  /** A client must send its whole request within this time, else 408. */
  requestTimeoutMs: number
  /** Requests being answered at once; one more is answered 503 with Retry-After. Connections are capped at {@link CONNECTIONS_PER_REQUEST} times this. */
  maxRequests: number
}

export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = {headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, maxRequests: 64}
/** Open connections allowed per request slot: browsers hold up to 6 keep-alive connections, most of them idle. */
export const CONNECTIONS_PER_REQUEST = 4
/** Request line and headers, as Node's default: a larger request is answered 431. */
export const MAX_HEADER_BYTES = 16 * 1024
/** No route reads a body: a larger one is answered 413. */
export const MAX_BODY_BYTES = 1024
/** An idle keep-alive connection is closed after this long. */
export const KEEP_ALIVE_TIMEOUT_MS = 5000

export function checkHttpLimits(limits: HttpLimits): HttpLimits {
  if (!(limits.headersTimeoutMs >= 100)) throw new HttpLimitsError('--http-headers-timeout must be at least 100ms')
  if (!(limits.requestTimeoutMs >= limits.headersTimeoutMs)) throw new HttpLimitsError('--http-request-timeout must be at least --http-headers-timeout')
  if (!(Number.isInteger(limits.maxRequests) && limits.maxRequests >= 1)) throw new HttpLimitsError('--http-max-requests must be at least 1')
  return limits
}
