import {Flags} from '@oclif/core'
import {CLUSTER_DDL_MODES, parseClusterDdlMode} from '../backends/clickhouse/options.js'
import {DEFAULT_REDIS_BUCKET_TTL_MS} from '../backends/redis/options.js'
import type {BackendOptions} from '../backends/registry.js'
import {parseDuration} from '../util/duration.js'
import {durationDefault, durationFlag} from './flags.js'

/**
 * Flags for running against a Redis Cluster or a ClickHouse cluster. Commands spread them next to
 * `backendFlags`.
 */
export const backendScalingFlags = {
  'redis-cluster': Flags.string({
    description: 'Use this Redis Cluster instead of --redis-url: comma-separated host:port of some of its nodes (the rest are discovered).',
    env: 'REDIS_CLUSTER_NODES',
  }),
  'clickhouse-cluster': Flags.string({
    description: 'ClickHouse cluster name from remote_servers: local tables on every node, Distributed tables over them.',
    env: 'CLICKHOUSE_CLUSTER',
  }),
  'clickhouse-cluster-ddl': Flags.string({
    description:
      'How --clickhouse-cluster tables are created: on-cluster (ON CLUSTER, needs ZooKeeper/Keeper) or ' +
      'local (on the --clickhouse-url node only; run once per node).',
    env: 'CLICKHOUSE_CLUSTER_DDL',
    options: [...CLUSTER_DDL_MODES],
    default: 'on-cluster',
  }),
}

/** For commands that write (consume): how long Redis keeps the hourly buckets. */
export const backendWriteFlags = {
  'redis-bucket-ttl': durationFlag({
    description: 'redis: keep each hourly bucket (and its per-error-code buckets) this long after its hour ended; 0 keeps them for ever.',
    env: 'IPC_REDIS_BUCKET_TTL',
    ...durationDefault(DEFAULT_REDIS_BUCKET_TTL_MS),
  }),
}

/**
 * Maps the shared backend flags (src/cli/flags.ts `backendFlags`, plus `backendScalingFlags` and
 * `backendWriteFlags`) to options. A command that does not declare those still honours their environment variables
 * (REDIS_CLUSTER_NODES, IPC_REDIS_BUCKET_TTL, CLICKHOUSE_CLUSTER, CLICKHOUSE_CLUSTER_DDL).
 */
export function backendOptionsFromFlags(flags: {
  'redis-url': string
  'redis-key': string
  'redis-user'?: string
  'redis-password'?: string
  'redis-ca'?: string
  'clickhouse-ca'?: string
  'clickhouse-url': string
  'clickhouse-user': string
  'clickhouse-password': string
  'clickhouse-database': string
  'redis-cluster'?: string
  'redis-bucket-ttl'?: number
  'clickhouse-cluster'?: string
  'clickhouse-cluster-ddl'?: string
}): BackendOptions {
  const env = process.env
  const ttl = flags['redis-bucket-ttl'] ?? (env.IPC_REDIS_BUCKET_TTL ? parseDuration(env.IPC_REDIS_BUCKET_TTL) : undefined)
  const ddl = flags['clickhouse-cluster-ddl'] ?? env.CLICKHOUSE_CLUSTER_DDL
  return {
    redisUrl: flags['redis-url'],
    redisKey: flags['redis-key'],
    redisUsername: nonEmpty(flags['redis-user']),
    redisPassword: flags['redis-password'] || undefined,
    redisCaFile: nonEmpty(flags['redis-ca']),
    clickhouseCaFile: nonEmpty(flags['clickhouse-ca']),
    clickhouseUrl: flags['clickhouse-url'],
    clickhouseUser: flags['clickhouse-user'],
    clickhousePassword: flags['clickhouse-password'],
    clickhouseDatabase: flags['clickhouse-database'],
    redisClusterNodes: nonEmpty(flags['redis-cluster'] ?? env.REDIS_CLUSTER_NODES),
    redisBucketTtlMs: ttl,
    clickhouseCluster: nonEmpty(flags['clickhouse-cluster'] ?? env.CLICKHOUSE_CLUSTER),
    clickhouseClusterDdl: ddl === undefined || ddl === '' ? undefined : parseClusterDdlMode(ddl),
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim()
  return trimmed ? trimmed : undefined
}
