import {Kafka, logLevel as KafkaLogLevel, PartitionAssigners, Partitioners, type LogEntry, type PartitionAssigner} from 'kafkajs'

/** The one place that knows the Kafka client library, so it can be swapped without touching callers. */

export interface KafkaSettings {
  brokers: readonly string[]
  clientId?: string
  /** Where client warnings and errors go (one line each). Default: stderr. */
  log?: (line: string) => void
  /** Client log level: error, warn, info, debug, nothing. Default: error. */
  logLevel?: string
  /** Initial connection timeout per broker. */
  connectionTimeoutMs?: number
}

export class KafkaSettingsError extends Error {
  override name = 'KafkaSettingsError'
}

const HOST_PORT = /^[A-Za-z0-9._-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$/

/** `host1:9092, host2:9092` → `['host1:9092', 'host2:9092']`, each checked for host:port form. */
export function parseBrokers(text: string): string[] {
  const brokers = text.split(',').map((broker) => broker.trim()).filter(Boolean)
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

export function createKafka(settings: KafkaSettings): Kafka {
  const log = settings.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  const level = LEVELS[settings.logLevel ?? 'error'] ?? KafkaLogLevel.ERROR
  return new Kafka({
    clientId: settings.clientId ?? 'ipc',
    brokers: [...settings.brokers],
    connectionTimeout: settings.connectionTimeoutMs ?? 3000,
    logLevel: level,
    logCreator: () => (entry: LogEntry) => {
      const {message, error} = entry.log as {message: string; error?: string}
      log(`kafka ${entry.label.toLowerCase()}: ${message}${error ? ` (${error})` : ''}`)
    },
  })
}

/** The producer partitioner: Kafka's own (murmur2 of the key), as the Java client uses. */
export const defaultPartitioner = Partitioners.DefaultPartitioner

/**
 * The round-robin assigner, optionally answering only after `delayMs`.
 *
 * Why the delay: librdkafka's mock cluster (the dev broker used on machines without Docker) ends a
 * rebalance as soon as the leader's SyncGroup arrives; a follower whose SyncGroup comes later gets
 * INVALID_REQUEST and kafkajs drops it. Holding the leader's assignment back a little lets every
 * follower's SyncGroup arrive first. A real Kafka broker waits for all members, so the delay is 0
 * unless configured (`KAFKA_ASSIGN_DELAY_MS`, set by `scripts/services env`).
 */
export function roundRobinAssigner(delayMs = 0): PartitionAssigner {
  if (delayMs <= 0) return PartitionAssigners.roundRobin
  return (config) => {
    const inner = PartitionAssigners.roundRobin(config)
    return {
      ...inner,
      async assign(group) {
        await new Promise((resolve) => setTimeout(resolve, delayMs))
        return inner.assign(group)
      },
    }
  }
}

export type {Kafka} from 'kafkajs'
