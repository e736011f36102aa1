import {readFileSync} from 'node:fs'
import type {SASLOptions} from 'kafkajs'
import type {ConnectionOptions} from 'node:tls'

/** How a client talks to the brokers: the names kcat, librdkafka and the Java client use. */
export const SECURITY_PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'] as const
export type SecurityProtocol = (typeof SECURITY_PROTOCOLS)[number]

export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const
export type SaslMechanism = (typeof SASL_MECHANISMS)[number]

/** A security setting is missing, contradictory or unreadable (a usage error: nothing was contacted). */
export class KafkaSecurityError extends Error {
  override name = 'KafkaSecurityError'
  readonly retriable = false
}

/** Security settings as given: flags, or client properties (`security.protocol`, `sasl.username`, …). */
export interface KafkaSecuritySettings {
  protocol?: string
  saslMechanism?: string
  saslUsername?: string
  saslPassword?: string
  /** A file whose first line is the SASL password (keeps it out of `ps` and shell history). */
  saslPasswordFile?: string
  /** PEM file of the CA certificates that sign the brokers' certificates. Default: the system's. */
  caFile?: string
  /** PEM client certificate and key, for brokers that require client certificates (mutual TLS). */
  certFile?: string
  keyFile?: string
  keyPassword?: string
  /** False only when asked for explicitly: the broker's certificate is then not checked. */
  verifyCertificates?: boolean
}

/** What kafkajs needs: `ssl` and `sasl` of its client config. */
export interface KafkaSecurity {
  protocol: SecurityProtocol
  ssl?: ConnectionOptions
  sasl?: SASLOptions
}

/** Property names of a kcat / librdkafka or Java client properties file, mapped to settings. */
const PROPERTY_NAMES: Record<string, keyof KafkaSecuritySettings> = {
  'security.protocol': 'protocol',
  'sasl.mechanisms': 'saslMechanism',
  'sasl.mechanism': 'saslMechanism',
  'sasl.username': 'saslUsername',
  'sasl.password': 'saslPassword',
  'ssl.ca.location': 'caFile',
  'ssl.certificate.location': 'certFile',
  'ssl.key.location': 'keyFile',
  'ssl.key.password': 'keyPassword',
}

/**
 * Reads a Java-style properties file (`key=value` or `key: value`, `#` and `!` comments, `\`
 * continuation lines) into a map. Only the settings above are used; others are ignored, as kcat -F
 * ignores what does not apply to it.
 */
export function parseProperties(text: string): Map<string, string> {
  const properties = new Map<string, string>()
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i].trimStart()
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + lines[++i].trimStart()
    const match = /^([^=:\s]+)\s*[=:\s]\s*(.*)$/.exec(line)
    if (match) properties.set(match[1], match[2].trimEnd())
    else properties.set(line.trim(), '')
  }
  return properties
}

/** The security settings a client properties file gives. */
export function settingsFromProperties(properties: Map<string, string>): KafkaSecuritySettings {
  const settings: KafkaSecuritySettings = {}
  for (const [name, value] of properties) {
    const setting = PROPERTY_NAMES[name]
    if (setting) (settings as Record<string, string>)[setting] = value
  }
  const verify = properties.get('enable.ssl.certificate.verification')
  if (verify !== undefined) settings.verifyCertificates = verify.trim().toLowerCase() !== 'false'
  // The Java client takes SASL credentials as a JAAS line: `... required username="u" password="p";`
  const jaas = properties.get('sasl.jaas.config')
  if (jaas) {
    settings.saslUsername ??= /\busername\s*=\s*"([^"]*)"/.exec(jaas)?.[1]
    settings.saslPassword ??= /\bpassword\s*=\s*"([^"]*)"/.exec(jaas)?.[1]
  }
  return settings
}

/** Later settings override earlier ones; unset (undefined) values do not. */
export function mergeSettings(...layers: KafkaSecuritySettings[]): KafkaSecuritySettings {
  const merged: KafkaSecuritySettings = {}
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) if (value !== undefined) (merged as Record<string, unknown>)[key] = value
  }
  return merged
}

/** A file a setting names (PEM, password, properties), read as text; a KafkaSecurityError if it cannot be. */
function readSettingFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (error) {
    throw new KafkaSecurityError(`cannot read the ${what} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
}

function oneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  const upper = value.trim().toUpperCase()
  const found = allowed.find((name) => name === upper)
  if (!found) throw new KafkaSecurityError(`unknown ${what} "${value}": use ${allowed.join(', ')}`)
  return found
}

/**
 * Checks the settings and reads the files they name. The protocol defaults to SASL_SSL when SASL
 * credentials are given, SSL when only TLS files are, PLAINTEXT otherwise (as kcat does not, but a
 * user who gave a password clearly wants SASL).
 */
export function resolveSecurity(settings: KafkaSecuritySettings): KafkaSecurity {
  const hasSasl = settings.saslUsername !== undefined || settings.saslMechanism !== undefined
  const hasTls = settings.caFile !== undefined || settings.certFile !== undefined
  const protocol = settings.protocol ? oneOf(settings.protocol, SECURITY_PROTOCOLS, 'security protocol') : hasSasl ? 'SASL_SSL' : hasTls ? 'SSL' : 'PLAINTEXT'
  const security: KafkaSecurity = {protocol}
  if (protocol === 'SSL' || protocol === 'SASL_SSL') {
    const ssl: ConnectionOptions = {rejectUnauthorized: settings.verifyCertificates !== false}
    if (settings.caFile) ssl.ca = readSettingFile(settings.caFile, 'CA file')
    if ((settings.certFile === undefined) !== (settings.keyFile === undefined)) {
      throw new KafkaSecurityError('a client certificate needs its key and a key its certificate: give both --ssl-cert and --ssl-key')
    }
    if (settings.certFile && settings.keyFile) {
      ssl.cert = readSettingFile(settings.certFile, 'client certificate')
      ssl.key = readSettingFile(settings.keyFile, 'client key')
      if (settings.keyPassword) ssl.passphrase = settings.keyPassword
    }
    security.ssl = ssl
  } else if (hasTls) {
    throw new KafkaSecurityError(`TLS files were given but the security protocol is ${protocol}: use SSL or SASL_SSL`)
  }
  if (protocol === 'SASL_PLAINTEXT' || protocol === 'SASL_SSL') {
    const mechanism = oneOf(settings.saslMechanism ?? 'PLAIN', SASL_MECHANISMS, 'SASL mechanism')
    if (!settings.saslUsername) throw new KafkaSecurityError(`security protocol ${protocol} needs a SASL username (--sasl-username)`)
    let password = settings.saslPassword
    if (settings.saslPasswordFile !== undefined) password = readSettingFile(settings.saslPasswordFile, 'SASL password file').split(/\r?\n/)[0]
    if (password === undefined) throw new KafkaSecurityError(`security protocol ${protocol} needs a SASL password (--sasl-password-file or --sasl-password)`)
    const username = settings.saslUsername
    security.sasl =
      mechanism === 'PLAIN'
        ? {mechanism: 'plain', username, password}
        : mechanism === 'SCRAM-SHA-256'
          ? {mechanism: 'scram-sha-256', username, password}
          : {mechanism: 'scram-sha-512', username, password}
  } else if (hasSasl) {
    throw new KafkaSecurityError(`SASL settings were given but the security protocol is ${protocol}: use SASL_PLAINTEXT or SASL_SSL`)
  }
  return security
}

/** Reads a client properties file (`--kafka-config`, as `kcat -F`). */
export function readClientProperties(file: string): KafkaSecuritySettings {
  return settingsFromProperties(parseProperties(readSettingFile(file, 'Kafka client properties')))
}
