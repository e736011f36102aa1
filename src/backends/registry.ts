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
  /** Buffering backends flush when this many events are buffered. Default 10,000. */
  batchSize?: number
  /** Buffering backends flush at least this often, even with no new events. Default 30,000 ms. */
  flushIntervalMs?: number
  /** Timeout of every single backend request. Default 10,000 ms. */
  requestTimeoutMs?: number
  /**
   * A failed write is retried with capped exponential backoff; after this much time of failing the
   * backend gives up and `add()`/`flush()` reject with a BackendError. Default: retry forever.
   */
  maxRetryTimeMs?: number
  /** Called for every failed write/retry, so the caller can log it. */
  onError?: (error: BackendError) => void
}

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

/** Maps the shared backend flags (src/flags.ts `backendFlags`) to options. */
export function backendOptionsFromFlags(flags: {
  'redis-url': string
  'redis-key': string
  'clickhouse-url': string
  'clickhouse-user': string
  'clickhouse-password': string
  'clickhouse-database': string
}): BackendOptions {
  return {
    redisUrl: flags['redis-url'],
    redisKey: flags['redis-key'],
    clickhouseUrl: flags['clickhouse-url'],
    clickhouseUser: flags['clickhouse-user'],
    clickhousePassword: flags['clickhouse-password'],
    clickhouseDatabase: flags['clickhouse-database'],
  }
}
