import {readFileSync} from 'node:fs'
import {dirname, resolve} from 'node:path'
import {createSecureContext, type SecureVersion} from 'node:tls'
import {parseDocument} from 'yaml'
import {WebConfigError} from './web-errors.js'

export {WebConfigError} from './web-errors.js'

/**
 * The web configuration file of Prometheus's exporter-toolkit (`--web.config.file` of
 * node_exporter and the other exporters), read once at start-up: TLS for the server, client
 * certificates, and users with bcrypt hashes for basic auth. Paths in it are relative to the file.
 */

/** exporter-toolkit's client_auth_type values, Go's tls.ClientAuthType names. */
export const CLIENT_AUTH_TYPES = ['NoClientCert', 'RequestClientCert', 'RequireAnyClientCert', 'VerifyClientCertIfGiven', 'RequireAndVerifyClientCert'] as const
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number]

const TLS_VERSIONS: Record<string, SecureVersion> = {TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3'}

export interface WebTlsConfig {
  cert: Buffer
  key: Buffer
  clientAuth: ClientAuthType
  /** The CAs a client certificate is verified against (client_ca_file). */
  clientCa?: Buffer
  minVersion: SecureVersion
  maxVersion: SecureVersion
}

export interface WebConfig {
  /** Where it was read from, for messages. */
  file: string
  tls?: WebTlsConfig
  /** User name → bcrypt hash; empty: no basic auth. */
  users: ReadonlyMap<string, string>
}

const TOP_LEVEL_KEYS = ['tls_server_config', 'basic_auth_users', 'http_server_config']
const TLS_KEYS = ['cert_file', 'key_file', 'client_auth_type', 'client_ca_file', 'min_version', 'max_version']
const HTTP_KEYS = ['http2']
/** exporter-toolkit keys that ipc does not implement: refused rather than silently ignored. */
const UNSUPPORTED_KEYS = new Set([
  'cert',
  'key',
  'client_ca',
  'client_allowed_sans',
  'cipher_suites',
  'curve_preferences',
  'prefer_server_cipher_suites',
  'headers',
  'rate_limit',
])
/** $2a$, $2b$ or $2y$ (htpasswd -B), a two-digit cost, 22 characters of salt and 31 of hash. */
const BCRYPT_HASH = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/

type Mapping = Record<string, unknown>

function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function checkKeys(mapping: Mapping, allowed: readonly string[], where: string): void {
  for (const key of Object.keys(mapping)) {
    if (allowed.includes(key)) continue
    const name = where ? `${where}.${key}` : key
    if (UNSUPPORTED_KEYS.has(key)) throw new WebConfigError(`${name} is not supported by ipc`)
    throw new WebConfigError(`unknown key ${name}`)
  }
}

function mappingAt(parent: Mapping, key: string): Mapping | undefined {
  const value = parent[key]
  if (value === undefined || value === null) return undefined
  if (!isMapping(value)) throw new WebConfigError(`${key} must be a mapping`)
  return value
}

function stringAt(mapping: Mapping, key: string, where: string): string | undefined {
  const value = mapping[key]
  if (value === undefined || value === null || value === '') return undefined
  if (typeof value !== 'string') throw new WebConfigError(`${where}.${key} must be a string`)
  return value
}

function readConfigFile(file: string, key: string, directory: string): Buffer {
  const path = resolve(directory, file)
  try {
    return readFileSync(path)
  } catch (error) {
    throw new WebConfigError(`cannot read ${key} ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`)
  }
}

function tlsVersion(mapping: Mapping, key: string, fallback: SecureVersion): SecureVersion {
  const name = stringAt(mapping, key, 'tls_server_config')
  if (name === undefined) return fallback
  const version = TLS_VERSIONS[name]
  if (!version) throw new WebConfigError(`tls_server_config.${key} ${JSON.stringify(name)} is not one of ${Object.keys(TLS_VERSIONS).join(', ')}`)
  return version
}

/** The OpenSSL reason of a failed context, without the library's error-code prefix. */
function openSslReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  return message.replace(/^error:[0-9A-F]+:/, '').split('\n')[0]
}

function tlsConfig(mapping: Mapping, directory: string): WebTlsConfig {
  checkKeys(mapping, TLS_KEYS, 'tls_server_config')
  const certFile = stringAt(mapping, 'cert_file', 'tls_server_config')
  const keyFile = stringAt(mapping, 'key_file', 'tls_server_config')
  if (!certFile) throw new WebConfigError('tls_server_config needs cert_file')
  if (!keyFile) throw new WebConfigError('tls_server_config needs key_file')
  const clientAuth = (stringAt(mapping, 'client_auth_type', 'tls_server_config') ?? 'NoClientCert') as ClientAuthType
  if (!CLIENT_AUTH_TYPES.includes(clientAuth)) {
    throw new WebConfigError(`tls_server_config.client_auth_type ${JSON.stringify(clientAuth)} is not one of ${CLIENT_AUTH_TYPES.join(', ')}`)
  }
  const caFile = stringAt(mapping, 'client_ca_file', 'tls_server_config')
  const verifies = clientAuth === 'VerifyClientCertIfGiven' || clientAuth === 'RequireAndVerifyClientCert'
  if (verifies && !caFile) throw new WebConfigError(`tls_server_config.client_auth_type ${clientAuth} needs client_ca_file`)
  if (caFile && clientAuth === 'NoClientCert') throw new WebConfigError('tls_server_config.client_ca_file is given but client_auth_type is NoClientCert')
  const minVersion = tlsVersion(mapping, 'min_version', 'TLSv1.2')
  const maxVersion = tlsVersion(mapping, 'max_version', 'TLSv1.3')
  const config: WebTlsConfig = {
    cert: readConfigFile(certFile, 'cert_file', directory),
    key: readConfigFile(keyFile, 'key_file', directory),
    clientAuth,
    clientCa: caFile ? readConfigFile(caFile, 'client_ca_file', directory) : undefined,
    minVersion,
    maxVersion,
  }
  try {
    createSecureContext({cert: config.cert, key: config.key, ca: config.clientCa, minVersion: config.minVersion, maxVersion: config.maxVersion})
  } catch (error) {
    throw new WebConfigError(`cannot use cert_file ${resolve(directory, certFile)} with key_file ${resolve(directory, keyFile)}: ${openSslReason(error)}`)
  }
  return config
}

function basicAuthUsers(mapping: Mapping): Map<string, string> {
  const users = new Map<string, string>()
  for (const [user, hash] of Object.entries(mapping)) {
    if (user.includes(':')) throw new WebConfigError(`basic_auth_users: a user name cannot contain ":"`)
    if (typeof hash !== 'string' || !BCRYPT_HASH.test(hash))
      throw new WebConfigError(`basic_auth_users.${user} is not a bcrypt hash (make one with htpasswd -nBC 10 "")`)
    users.set(user, hash)
  }
  return users
}

/** The configuration in `text` (read from `file`); a {@link WebConfigError} when it cannot be used. */
export function parseWebConfig(text: string, file: string): WebConfig {
  const document = parseDocument(text, {uniqueKeys: true})
  const [yamlError] = document.errors
  // The first line only: the lines after it quote the file, which may hold a hash.
  if (yamlError) throw new WebConfigError(`not valid YAML: ${yamlError.message.split('\n')[0].replace(/:$/, '')}`)
  const root: unknown = document.toJS() ?? {}
  if (!isMapping(root)) throw new WebConfigError('the file must be a YAML mapping')
  checkKeys(root, TOP_LEVEL_KEYS, '')
  const http = mappingAt(root, 'http_server_config')
  if (http) {
    checkKeys(http, HTTP_KEYS, 'http_server_config')
    if (http.http2 !== undefined && typeof http.http2 !== 'boolean') throw new WebConfigError('http_server_config.http2 must be true or false')
  }
  const tls = mappingAt(root, 'tls_server_config')
  const users = mappingAt(root, 'basic_auth_users')
  return {file, tls: tls ? tlsConfig(tls, dirname(resolve(file))) : undefined, users: basicAuthUsers(users ?? {})}
}

/** Reads and checks the web configuration file `file`. */
export function loadWebConfig(file: string): WebConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new WebConfigError(`cannot read the web config ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  try {
    return parseWebConfig(text, file)
  } catch (error) {
    if (error instanceof WebConfigError) throw new WebConfigError(`web config ${file}: ${error.message}`)
    throw error
  }
}
