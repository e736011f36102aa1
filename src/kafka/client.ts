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
  constructor(
    readonly brokers: readonly string[],
    options?: ErrorOptions,
  ) {
    const reason = (options?.cause as Error | undefined)?.message ?? 'no answer'
    const hint = /not connected|timed out/i.test(reason) ? ": is it a Kafka broker's port?" : ''
    super(`no Kafka broker answered at ${brokers.join(',')} (${reason})${hint}`, options)
  }
}

/**
 * Broker answers that kafkajs logs as errors but that are the group protocol at work: a member
 * joining or leaving makes every other member's next heartbeat answer REBALANCE_IN_PROGRESS, and
 * the member rejoins (the consumer reports that as its REBALANCING event). Shown from `info` up.
 */
const ROUTINE_ERRORS = /The group is rebalancing, so a rejoin is needed/

/**
 * A kafkajs client whose log is held back until a broker has answered one of its consumers,
 * producers or admins. Until then every client error is a failure to reach the cluster, which the command
 * reports once as a {@link KafkaUnreachableError}; kafkajs would log each retry of each broker.
 * With `--kafka-log-level info` or `debug` nothing is held.
 */
export function createKafka(settings: KafkaSettings): Kafka {
  const log = settings.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  const level = LEVELS[settings.logLevel ?? 'error'] ?? KafkaLogLevel.ERROR
  let held: string[] | undefined = level <= KafkaLogLevel.WARN ? [] : undefined
  const opened = () => {
    reached.add(kafka)
    if (!held) return
    for (const line of held) log(line)
    held = undefined
  }
  const kafka = new Kafka({
    clientId: settings.clientId ?? 'ipc',
    brokers: [...settings.brokers],
    connectionTimeout: settings.connectionTimeoutMs ?? 3000,
    retry: settings.retry,
    logLevel: level,
    logCreator: () => (entry: LogEntry) => {
      const {message, error} = entry.log as {message: string; error?: string}
      if (level < KafkaLogLevel.INFO && error && ROUTINE_ERRORS.test(error)) return
      const line = `kafka ${entry.label.toLowerCase()}: ${message}${error ? ` (${error})` : ''}`
      if (held) held.push(line)
      else log(line)
    },
  })
  // The first answered request, rather than connect(): kafkajs's connect() can resolve against a
  // port that accepted the TCP connection but never answered the Kafka handshake.
  const watch = <T extends Consumer | Producer | Admin>(client: T): T => {
    const remove = (client.on as (event: string, listener: () => void) => () => void)(client.events.REQUEST, () => {
      opened()
      remove()
    })
    return client
  }
  const {consumer, producer, admin} = kafka
  return Object.assign(kafka, {
    consumer: (config: Parameters<Kafka['consumer']>[0]) => watch(consumer.call(kafka, config)),
    producer: (config?: Parameters<Kafka['producer']>[0]) => watch(producer.call(kafka, config)),
    admin: (config?: Parameters<Kafka['admin']>[0]) => watch(admin.call(kafka, config)),
  })
}

const reached = new WeakSet<Kafka>()

/**
 * The error to report when a command using `kafka` failed: {@link KafkaUnreachableError} when a
 * Kafka client error came before any of its clients had connected, the error itself otherwise.
 */
export function explainKafkaFailure(kafka: Kafka | undefined, brokers: readonly string[], error: unknown): unknown {
  if (!kafka || reached.has(kafka) || !(error instanceof Error)) return error
  if (!error.name.startsWith('KafkaJS') && error.message !== 'Broker not connected') return error
  return new KafkaUnreachableError(brokers, {cause: error})
}

export type {Kafka} from 'kafkajs'
