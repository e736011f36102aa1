import type {WriterOptions} from '../options.js'

export interface RedisOptions extends WriterOptions {
  redisUrl: string
  redisKey: string
  /**
   * Redis Cluster nodes, comma-separated `host:port` (or `redis://[user:password@]host:port`); when
   * set, the redis backend uses the cluster and ignores `redisUrl`.
   */
  redisClusterNodes?: string
  /** How long Redis keeps an hourly bucket after its hour ended; 0 keeps buckets for ever. Default 30 days. */
  redisBucketTtlMs?: number
  /** ACL user and password; override those of the URL (which may also carry them). */
  redisUsername?: string
  redisPassword?: string
  /** PEM CA bundle that signs the server's certificate, for `rediss://` URLs. Default: the system CAs. */
  redisCaFile?: string
}

export const DEFAULT_REDIS_BUCKET_TTL_MS = 30 * 86_400_000
