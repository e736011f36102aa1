import {Flags} from '@oclif/core'
import {COMPRESSION_NAMES, type CompressionName} from '../kafka/codecs.js'
import {parseDuration} from '../util/duration.js'
import {
  DEFAULT_BROKERS,
  DEFAULT_CLICKHOUSE_DATABASE,
  DEFAULT_CLICKHOUSE_URL,
  DEFAULT_FETCH_MAX_BYTES,
  DEFAULT_HEAP_GROWING_PERCENT,
  DEFAULT_MAX_PARTITION_FETCH_BYTES,
  DEFAULT_REDIS_KEY,
  DEFAULT_REDIS_URL,
} from './defaults.js'

/** A duration flag (`500ms`, `5s`, `2m`) parsed to milliseconds. */
export const durationFlag = Flags.custom<number>({
  parse: async (input) => parseDuration(input),
  helpValue: '<duration>',
})

const HELP_UNITS: ReadonlyArray<readonly [string, number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
]

/** Milliseconds in the largest unit that divides them, as a duration flag takes it: `30d`, `10s`, `500ms`. */
export function durationText(ms: number): string {
  const unit = HELP_UNITS.find(([, size]) => ms > 0 && ms % size === 0)
  return unit ? `${ms / unit[1]}${unit[0]}` : `${ms}ms`
}

/** The `default` of a duration flag, shown in its help as a duration (`[default: 30s]`). */
export function durationDefault(ms: number): {default: number; defaultHelp: () => Promise<string>} {
  return {default: ms, defaultHelp: async () => durationText(ms)}
}

/** What the consumer holds in memory: its fetch sizes and V8's heap growth (src/util/heap-growth.ts). */
export const consumerMemoryFlags = {
  'fetch-max-bytes': Flags.integer({
    description:
      "Most bytes one fetch returns over all partitions (Kafka's fetch.max.bytes). A fetch is decoded whole before " +
      'its batches are processed: lower holds less in memory, at the cost of more round trips.',
    env: 'KAFKA_FETCH_MAX_BYTES',
    default: DEFAULT_FETCH_MAX_BYTES,
    min: 1024,
  }),
  'max-partition-fetch-bytes': Flags.integer({
    description: "Most bytes one fetch returns per partition (Kafka's max.partition.fetch.bytes).",
    env: 'KAFKA_MAX_PARTITION_FETCH_BYTES',
    default: DEFAULT_MAX_PARTITION_FETCH_BYTES,
    min: 1024,
  }),
  'heap-growing-percent': Flags.integer({
    description:
      "How far V8 lets the heap grow past what is live before it collects, in percent (V8's --heap-growing-percent). " +
      "Small keeps memory near the live heap at a few percent more CPU; 0 leaves V8's own choice (up to 4x). Not set " +
      'when NODE_OPTIONS sizes the heap itself (--max-old-space-size, --heap-growing-percent).',
    env: 'IPC_HEAP_GROWING_PERCENT',
    default: DEFAULT_HEAP_GROWING_PERCENT,
    min: 0,
    max: 300,
  }),
}

/** The Kafka client's log level, for the commands that talk to Kafka. */
export const kafkaLogLevelFlags = {
  'kafka-log-level': Flags.string({
    description: 'Kafka client log level.',
    options: ['nothing', 'error', 'warn', 'info', 'debug'],
    default: 'error',
    env: 'KAFKA_LOG_LEVEL',
  }),
}

/** A Kafka compression codec, named as kcat's `-z` and the Java client's `compression.type` name it. */
export const compressionFlag = Flags.custom<CompressionName>({
  options: [...COMPRESSION_NAMES],
  helpValue: COMPRESSION_NAMES.join('|'),
})

export const kafkaFlags = {
  brokers: Flags.string({
    description: 'Kafka bootstrap brokers, comma-separated host:port.',
    env: 'KAFKA_BROKERS',
    default: DEFAULT_BROKERS,
  }),
  topic: Flags.string({description: 'Kafka topic.', env: 'IPC_TOPIC', required: true}),
}

export const backendFlags = {
  backend: Flags.string({
    description: 'Count backend: redis (HyperLogLog, approximate), clickhouse (exact, keeps events), memory (exact, this process only).',
    env: 'IPC_BACKEND',
    options: ['redis', 'clickhouse', 'memory'],
    default: 'redis',
  }),
  'redis-url': Flags.string({description: 'Redis URL.', env: 'REDIS_URL', default: DEFAULT_REDIS_URL}),
  'redis-key': Flags.string({description: 'Redis HyperLogLog key.', env: 'IPC_REDIS_KEY', default: DEFAULT_REDIS_KEY}),
  'redis-user': Flags.string({description: 'Redis ACL user (instead of one in the URL).', env: 'REDIS_USERNAME'}),
  'redis-password': Flags.string({description: 'Redis password (instead of one in the URL); prefer the environment to the flag.', env: 'REDIS_PASSWORD'}),
  'redis-ca': Flags.string({description: 'PEM CA bundle for rediss:// URLs. Default: the system CAs.', env: 'REDIS_CA'}),
  'clickhouse-url': Flags.string({description: 'ClickHouse HTTP URL.', env: 'CLICKHOUSE_URL', default: DEFAULT_CLICKHOUSE_URL}),
  'clickhouse-user': Flags.string({description: 'ClickHouse user.', env: 'CLICKHOUSE_USER', default: 'default'}),
  'clickhouse-password': Flags.string({description: 'ClickHouse password.', env: 'CLICKHOUSE_PASSWORD', default: ''}),
  'clickhouse-ca': Flags.string({description: 'PEM CA bundle for https:// ClickHouse URLs. Default: the system CAs.', env: 'CLICKHOUSE_CA'}),
  'clickhouse-database': Flags.string({
    description: 'ClickHouse database (created if missing).',
    env: 'CLICKHOUSE_DATABASE',
    default: DEFAULT_CLICKHOUSE_DATABASE,
  }),
}
