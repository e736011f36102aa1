import {Flags} from '@oclif/core'
import type {WebConfig} from '../http/web-config.js'
import {checkHttpLimits, DEFAULT_HTTP_LIMITS, type HttpLimits} from '../http/web-limits.js'
import {durationDefault, durationFlag} from './flags.js'

/** The flags of an HTTP server on a network (`serve`, and `consume`'s metrics server): web config and limits. */
export const webServerFlags = {
  'web-config': Flags.string({
    description:
      "Web configuration file in the format of Prometheus's exporters (--web.config.file): tls_server_config " +
      '(cert_file, key_file, client_auth_type, client_ca_file, min_version, max_version) for HTTPS and client ' +
      'certificates, basic_auth_users (bcrypt hashes) for basic auth on every route. Read once at start.',
    env: 'IPC_WEB_CONFIG',
  }),
  'http-headers-timeout': durationFlag({
    description: "Time a client has to send a request's headers (and the TLS handshake) before 408 and the connection closed.",
    env: 'IPC_HTTP_HEADERS_TIMEOUT',
    ...durationDefault(DEFAULT_HTTP_LIMITS.headersTimeoutMs),
  }),
  'http-request-timeout': durationFlag({
    description: 'Time a client has to send a whole request before 408.',
    env: 'IPC_HTTP_REQUEST_TIMEOUT',
    ...durationDefault(DEFAULT_HTTP_LIMITS.requestTimeoutMs),
  }),
  'http-max-requests': Flags.integer({
    description: 'Requests answered at once; more are answered 503 with Retry-After (open connections are capped at 4 times this).',
    env: 'IPC_HTTP_MAX_REQUESTS',
    default: DEFAULT_HTTP_LIMITS.maxRequests,
    min: 1,
  }),
}

interface WebServerFlagValues {
  'web-config'?: string
  'http-headers-timeout': number
  'http-request-timeout': number
  'http-max-requests': number
}

/**
 * The web config (read and checked now; `WebConfigError` when it cannot be used) and the limits
 * of the flags. The config's reader, and its YAML parser, load only when a file is given.
 */
export async function webServerOptionsFromFlags(flags: WebServerFlagValues): Promise<{webConfig?: WebConfig; limits: HttpLimits}> {
  const limits = checkHttpLimits({
    headersTimeoutMs: flags['http-headers-timeout'],
    requestTimeoutMs: flags['http-request-timeout'],
    maxRequests: flags['http-max-requests'],
  })
  const file = flags['web-config']
  if (file === undefined) return {limits}
  const {loadWebConfig} = await import('../http/web-config.js')
  return {webConfig: loadWebConfig(file), limits}
}
