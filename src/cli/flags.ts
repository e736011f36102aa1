import {Flags} from '@oclif/core'
import {COMPRESSION_NAMES, type CompressionName} from '../kafka/codecs.js'
import {parseDuration} from '../util/duration.js'

/** Defaults match compose.yaml: every service on its standard local port. */
export const DEFAULT_BROKERS = '127.0.0.1:9092'
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'
export const DEFAULT_REDIS_KEY = 'ipc:unique_device_ips'
export const DEFAULT_CLICKHOUSE_URL = 'http://127.0.0.1:8123'
export const DEFAULT_CLICKHOUSE_DATABASE = 'ipc'

/** A duration flag (`500ms`, `5s`, `2m`) parsed to milliseconds. */
export const durationFlag = Flags.custom<number>({
  parse: async (input) => parseDuration(input),
  helpValue: '<duration>',
})

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
