import {Flags} from '@oclif/core'
import {parseDuration} from '../duration.js'
import {durationFlag} from '../flags.js'
import type {BackendError, CountBackend} from './backend.js'
import {MemoryBackend} from './memory.js'

export const BACKEND_NAMES = ['redis', 'clickhouse', 'memory'] as const
export type BackendName = (typeof BACKEND_NAMES)[number]

/** Everything any backend may need; each implementation reads its own part. */
export interface BackendOptions {
  redisUrl: string
  redisKey: string
  clickhouseUrl: string
  clickhouseUser: string
  clickhousePassword: string
  clickhouseDatabase: string
  /** ClickHouse table name; default `events`. */
  clickhouseTable?: string
  /** Events per backend write (clickhouse: insert when this many are buffered). Default 10,000. */
  batchSize?: number
  /** Buffering backends flush at least this often, even with no new events. Default 30,000 ms. */
  flushIntervalMs?: number
  /** Timeout of every single backend request. Default 10,000 ms. */
  requestTimeoutMs?: number
  /**
   * A failed write is retried with capped exponential backoff; after this much time of failing the
   * backend gives up: the receipts of the events it held reject with a BackendError, and so do later
   * `add()`/`flush()` calls. Default: retry forever.
   */
  maxRetryTimeMs?: number
  /** Called for every failed write/retry, so the caller can log it. */
  onError?: (error: BackendError) => void
  /**
   * Redis Cluster nodes, comma-separated `host:port` (or `redis://[user:password@]host:port`); when
   * set, the redis backend uses the cluster and ignores `redisUrl`.
   */
  redisClusterNodes?: string
  /** How long Redis keeps an hourly bucket after its hour ended; 0 keeps buckets for ever. Default 30 days. */
  redisBucketTtlMs?: number
  /** ClickHouse cluster name (`remote_servers`): local tables on every node and Distributed tables over them. */
  clickhouseCluster?: string
  /**
   * How cluster tables are created: `on-cluster` (one `ON CLUSTER` DDL for every node; needs
   * ZooKeeper/ClickHouse Keeper) or `local` (this node only; run once against every node). Default `on-cluster`.
   */
  clickhouseClusterDdl?: ClusterDdlMode
}

export const CLUSTER_DDL_MODES = ['on-cluster', 'local'] as const
export type ClusterDdlMode = (typeof CLUSTER_DDL_MODES)[number]

export const DEFAULT_REDIS_BUCKET_TTL_MS = 30 * 86_400_000

type Factory = (options: BackendOptions) => Promise<CountBackend>

const FACTORIES: Record<BackendName, Factory> = {
  memory: async () => new MemoryBackend(),
  redis: async (options) => new (await import('./redis.js')).RedisBackend(options),
  clickhouse: async (options) => new (await import('./clickhouse.js')).ClickHouseBackend(options),
}

export function isBackendName(name: string): name is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(name)
}

/** Creates (does not connect) the backend registered under `name`. */
export async function createBackend(name: string, options: BackendOptions): Promise<CountBackend> {
  if (!isBackendName(name)) throw new Error(`unknown backend "${name}": use one of ${BACKEND_NAMES.join(', ')}`)
  return FACTORIES[name](options)
}

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
    description: 'How --clickhouse-cluster tables are created: on-cluster (ON CLUSTER, needs ZooKeeper/Keeper) or local (on the --clickhouse-url node only; run once per node).',
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
    default: DEFAULT_REDIS_BUCKET_TTL_MS,
    defaultHelp: async () => '30d',
  }),
}

/**
 * Maps the shared backend flags (src/flags.ts `backendFlags`, plus `backendScalingFlags` and
 * `backendWriteFlags`) to options. A command that does not declare those still honours their environment variables
 * (REDIS_CLUSTER_NODES, IPC_REDIS_BUCKET_TTL, CLICKHOUSE_CLUSTER, CLICKHOUSE_CLUSTER_DDL).
 */
export function backendOptionsFromFlags(flags: {
  'redis-url': string
  'redis-key': string
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

export function parseClusterDdlMode(text: string): ClusterDdlMode {
  if ((CLUSTER_DDL_MODES as readonly string[]).includes(text)) return text as ClusterDdlMode
  throw new Error(`invalid ClickHouse cluster DDL mode "${text}": use ${CLUSTER_DDL_MODES.join(' or ')}`)
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim()
  return trimmed ? trimmed : undefined
}
