import {errorChain} from '../util/errors.js'
import {registerCompressionCodecs} from './codecs.js'
import {installRecordBatchDecoder} from './record-batch-decoder.js'
import type {KafkaSecurity} from './security.js'
import {type Admin, type Consumer, Kafka, logLevel as KafkaLogLevel, type LogEntry, type Producer, type RetryOptions} from 'kafkajs'

/** The Kafka client: settings, broker addresses, and the errors of reaching a cluster. */

export interface KafkaSettings {
  brokers: readonly string[]
  clientId?: string
  /** Where client warnings and errors go (one line each). Default: stderr. */
  log?: (line: string) => void
  /** Client log level: error, warn, info, debug, nothing. Default: error. */
  logLevel?: string
  /** Initial connection timeout per broker. */
  connectionTimeoutMs?: number
  /** How the client retries reaching the cluster (connections, metadata). Default: kafkajs's, about 10 s. */
  retry?: RetryOptions
  /** TLS and SASL; default plaintext. */
  security?: KafkaSecurity
}

export class KafkaSettingsError extends Error {
  override name = 'KafkaSettingsError'
}

const HOST_PORT = /^[A-Za-z0-9._-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$/

/** `host1:9092, host2:9092` → `['host1:9092', 'host2:9092']`, each checked for host:port form. */
export function parseBrokers(text: string): string[] {
  const brokers = text
    .split(',')
    .map((broker) => broker.trim())
    .filter(Boolean)
  if (brokers.length === 0) throw new KafkaSettingsError('no Kafka brokers given: set --brokers or KAFKA_BROKERS (host:port,…)')
  for (const broker of brokers) {
    if (!HOST_PORT.test(broker)) throw new KafkaSettingsError(`invalid broker address "${broker}": use host:port`)
  }
  return brokers
}

const LEVELS: Record<string, KafkaLogLevel> = {
  nothing: KafkaLogLevel.NOTHING,
  error: KafkaLogLevel.ERROR,
  warn: KafkaLogLevel.WARN,
  info: KafkaLogLevel.INFO,
  debug: KafkaLogLevel.DEBUG,
}

/**
 * No broker at the given addresses took a Kafka request: nothing listens there, or what listens
 * does not speak Kafka (e.g. a Redis port, where the ApiVersions handshake gets no answer).
 */
export class KafkaUnreachableError extends Error {
  override name = 'KafkaUnreachableError'
  readonly retriable = true
  /** The message already says what the cause says. */
  readonly includesCause = true
  constructor(
    readonly brokers: readonly string[],
    options?: ErrorOptions,
  ) {
    const reason = oneLine((options?.cause as Error | undefined)?.message ?? 'no answer')
    const tls = tlsProblem(options?.cause)
    const hint = tls
      ? `: ${tls}`
      : /^closed connection$/i.test(reason)
        ? ': the broker closed the connection: a TLS or SASL listener? set --security-protocol (SSL, SASL_SSL, SASL_PLAINTEXT)'
        : /not connected|timed out|closed/i.test(reason)
          ? ": is it a Kafka broker's port, and its security protocol?"
          : ''
    super(`no Kafka broker answered at ${brokers.join(',')} (${reason})${hint}`, options)
  }
}

/** The brokers refused the SASL credentials (wrong password, unknown user, mechanism not enabled). */
export class KafkaAuthenticationError extends Error {
  override name = 'KafkaAuthenticationError'
  readonly retriable = false
  /** The message already says what the cause says. */
  readonly includesCause = true
  constructor(
    readonly brokers: readonly string[],
    options: ErrorOptions & {cause: Error},
  ) {
    super(`Kafka authentication failed at ${brokers.join(',')}: ${options.cause.message}`, options)
  }
}

const UNTRUSTED_CERTIFICATE = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
])

/** The first line of an error message, without OpenSSL's error-queue prefix and source location. */
function oneLine(message: string): string {
  const line = message.split('\n')[0].trim()
  return line.replace(/[0-9A-F]+:error:[0-9A-F]+:SSL routines:[^:]*:/, '').replace(/:\.\.\/deps\/.*$/, '')
}

/** What went wrong in a TLS handshake, said for people, from the Node.js error code in `error`'s chain. */
function tlsProblem(error: unknown): string | undefined {
  for (const current of errorChain(error)) {
    const code = (current as {code?: unknown}).code
    if (typeof code !== 'string') continue
    if (UNTRUSTED_CERTIFICATE.has(code)) return "TLS: the broker's certificate is not trusted (give its CA with --ssl-ca)"
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return "TLS: the broker's certificate is not for this host name"
    const alert = /alert (bad certificate|certificate required|unknown ca|handshake failure)/.exec(current.message)?.[1]
    if (alert) return `TLS handshake failed: the broker refused the client certificate (${alert}; give one it trusts with --ssl-cert and --ssl-key)`
    if (code === 'EPROTO' || code.startsWith('ERR_SSL')) return 'TLS handshake failed: is the port a TLS listener, and does it need a client certificate?'
    if (code === 'ECONNRESET' && /before secure TLS connection/.test(current.message)) {
      return 'TLS handshake failed: the broker closed the connection before TLS was set up (a plaintext listener, or one that needs a client certificate?)'
    }
    if (code === 'ECONNRESET') return 'the broker closed the connection: a TLS port, or one that needs a client certificate?'
  }
  return undefined
}

/**
 * Broker answers that kafkajs logs as errors but that are routine, retried states: a member joining
 * or leaving makes every other member's next heartbeat answer REBALANCE_IN_PROGRESS (the consumer
 * reports that as its REBALANCING event); a fresh broker's group coordinator is not available or
 * still loading, or a partition's leader is being elected, for a moment after it starts. kafkajs
 * retries each; what does not resolve ends in an error of its own. Shown from `info` up.
 */
const ROUTINE_ERRORS = new RegExp(
  [
    'The group is rebalancing, so a rejoin is needed',
    'The group coordinator is not available',
    'The coordinator is loading and hence can',
    'This is not the correct coordinator for this group',
    'There is no leader for this topic-partition as we are in the middle of a leadership election',
    'This server is not the leader for that topic-partition',
  ].join('|'),
)

/** Whether a kafkajs log entry's error is one of the routine, retried states that the default log level leaves out. */
export function isRoutineKafkaError(error: string): boolean {
  return ROUTINE_ERRORS.test(error)
}

/**
 * A kafkajs client whose log is held back until a broker has answered one of its consumers,
 * producers or admins. Until then every client error is a failure to reach the cluster, which the command
 * reports once as a {@link KafkaUnreachableError}; kafkajs would log each retry of each broker.
 * With `--kafka-log-level info` or `debug` nothing is held.
 *
 * Errors leave its consumers, producers and admins already explained: a refused login rejects with
 * {@link KafkaAuthenticationError}, a client error before any broker answered with
 * {@link KafkaUnreachableError}; anything else as kafkajs raised it.
 */
export function createKafka(settings: KafkaSettings): Kafka {
  registerCompressionCodecs()
  installRecordBatchDecoder()
  const log = settings.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  const level = LEVELS[settings.logLevel ?? 'error'] ?? KafkaLogLevel.ERROR
  let held: string[] | undefined = level <= KafkaLogLevel.WARN ? [] : undefined
  let reached = false
  const opened = () => {
    reached = true
    if (!held) return
    for (const line of held) log(line)
    held = undefined
  }
  const kafka = new Kafka({
    clientId: settings.clientId ?? 'ipc',
    brokers: [...settings.brokers],
    connectionTimeout: settings.connectionTimeoutMs ?? 3000,
    retry: settings.retry,
    ssl: settings.security?.ssl,
    sasl: settings.security?.sasl,
    logLevel: level,
    logCreator: () => (entry: LogEntry) => {
      const {message, error} = entry.log as {message: string; error?: string}
      if (level < KafkaLogLevel.INFO && error && isRoutineKafkaError(error)) return
      const line = `kafka ${entry.label.toLowerCase()}: ${message}${error ? ` (${error})` : ''}`
      if (held) held.push(line)
      else log(line)
    },
  })
  const explain = (error: unknown): unknown => explainKafkaError(error, settings.brokers, reached)
  // The first answered request past the handshake, rather than connect(): kafkajs's connect() can
  // resolve against a port that accepted the TCP connection but never answered the handshake, and
  // a broker answers ApiVersions before it refuses the SASL credentials.
  const watch = <T extends Consumer | Producer | Admin>(client: T): T => {
    const on = client.on as (event: string, listener: (event: {payload: {apiName?: string}}) => void) => () => void
    const remove = on(client.events.REQUEST, ({payload}) => {
      if (HANDSHAKE_REQUESTS.has(payload.apiName ?? '')) return
      opened()
      remove()
    })
    return explainingErrors(client, explain)
  }
  const {consumer, producer, admin} = kafka
  return Object.assign(kafka, {
    consumer: (config: Parameters<Kafka['consumer']>[0]) => watch(consumer.call(kafka, config)),
    producer: (config?: Parameters<Kafka['producer']>[0]) => watch(producer.call(kafka, config)),
    admin: (config?: Parameters<Kafka['admin']>[0]) => watch(admin.call(kafka, config)),
  })
}

/** `client` with every promise its methods return rejecting with `explain(error)` instead of `error`. */
function explainingErrors<T extends object>(client: T, explain: (error: unknown) => unknown): T {
  return new Proxy(client, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        const result: unknown = value.apply(target, args)
        return result instanceof Promise
          ? result.catch((error: unknown) => {
              throw explain(error)
            })
          : result
      }
    },
  })
}

/** Broker error codes that refuse a client's SASL login. */
const SASL_REFUSALS = new Set(['UNSUPPORTED_SASL_MECHANISM', 'ILLEGAL_SASL_STATE', 'SASL_AUTHENTICATION_FAILED'])

/** Requests of a connection's handshake: answered by any broker, also one that refuses the client. */
const HANDSHAKE_REQUESTS = new Set(['ApiVersions', 'SaslHandshake', 'SaslAuthenticate'])

/**
 * What a Kafka client's error means for the command: {@link KafkaAuthenticationError} for a
 * refused login, {@link KafkaUnreachableError} for a client error before any broker answered
 * (`reached` false), the error itself otherwise.
 */
function explainKafkaError(error: unknown, brokers: readonly string[], reached: boolean): unknown {
  if (error instanceof KafkaAuthenticationError || error instanceof KafkaUnreachableError) return error
  const refusal = errorChain(error).find(
    (current) => current.name === 'KafkaJSSASLAuthenticationError' || SASL_REFUSALS.has((current as {type?: string}).type ?? ''),
  )
  if (refusal) return new KafkaAuthenticationError(brokers, {cause: refusal})
  if (reached || !(error instanceof Error)) return error
  if (!error.name.startsWith('KafkaJS') && error.message !== 'Broker not connected') return error
  return new KafkaUnreachableError(brokers, {cause: error})
}

export type {Kafka} from 'kafkajs'
