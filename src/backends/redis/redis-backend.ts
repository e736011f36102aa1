import type {BoundedCountQuery, BucketSize, CountQuery, SeriesPoint} from '../../query/count-query.js'
import type {BackendError, FreshnessBackend, RangeCountBackend} from '../backend.js'
import {BufferedBackend} from '../buffered-backend.js'
import {validateRedisKey} from '../identifiers.js'
import {DEFAULT_BATCH_SIZE} from '../options.js'
import {DEFAULT_RETRY_POLICY} from '../retry.js'
import {readCaFile} from '../tls.js'
import {type RedisCommands, RedisConnection} from './connection.js'
import {RedisKeys} from './keys.js'
import {DEFAULT_REDIS_BUCKET_TTL_MS, type RedisOptions} from './options.js'
import {keysFor, RedisQueries} from './queries.js'
import {type DeviceSets, RedisWriter} from './writer.js'

export {connectFailureReason} from './connection.js'
export {PFCOUNT_MAX_KEYS} from './queries.js'
export {SCRIPT_MAX_DEVICES} from './writer.js'

/** Events per write when `batchSize` is not given; while a write is in flight the next collects up to this many. */

/**
 * Approximate count in Redis HyperLogLogs (standard error 0.81%; at most 12 KB per key whatever the
 * count, a few hundred bytes while a key holds few devices).
 *
 * Keys (K is the configured key, `{K}` its hash tag; see {@link RedisKeys}):
 * - `K`: every device ever (the all-time count),
 * - `{K}:e:<code>`: devices that ever reported that error code,
 * - `{K}:h:<YYYYMMDDHH>`: devices with an event in that UTC hour,
 * - `{K}:he:<YYYYMMDDHH>:<code>`: devices that reported that code in that hour,
 * - `{K}:last-write`: when the backend last wrote (epoch ms), set by the same command as the PFADDs.
 * Hourly keys expire `bucketTtlMs` after their hour ended (0: never); events for an hour already past
 * that go only into the all-time and error-code keys. A time range is counted as the union (PFCOUNT
 * over several keys) of the hours it touches, so it is widened outward to whole UTC hours; ranges of
 * more than PFCOUNT_MAX_KEYS keys are PFMERGEd into a temporary key in chunks first
 * ({@link RedisQueries}).
 *
 * Writes are combined (group commit, see {@link BatchWriter}): `add()` puts the events' distinct IPs
 * into the sets of the keys they touch and returns; one write goes out as soon as none is in flight,
 * holding everything added since the last one (at most `batchSize` events; a full batch makes
 * `add()` wait). A write is one command, one round trip ({@link RedisWriter}): PFADD into every key
 * plus EXPIREAT of the hourly keys. The receipt resolves once Redis acknowledged the write holding
 * its events; how durable an acknowledged write is depends on the server's persistence settings
 * (RDB snapshots / AOF). Small consumer batches thus cost one round trip per write rather than one
 * each, and a device repeated across them is sent once.
 *
 * With `redisClusterNodes` the backend talks to a Redis Cluster: all keys of one base key share a
 * hash slot (the `{K}` tag), so they live on one master and multi-key commands work.
 *
 * Connection, TLS and credentials: {@link RedisConnection}. The lifecycle is the one every backend
 * follows ({@link CountBackend}): `connect()` also checks that the key is absent or holds a
 * HyperLogLog; a lost connection is opened again by the next operation; writes are retried with
 * capped exponential backoff while counts fail at once.
 */
export class RedisBackend extends BufferedBackend<DeviceSets> implements RangeCountBackend, FreshnessBackend {
  readonly name = 'redis'
  readonly exact = false
  readonly timeResolution = 'hour'
  readonly freshnessMeasure = 'last-write'
  readonly location: string
  readonly key: string
  readonly keys: RedisKeys
  /** How long an hourly key is kept after its hour ended; 0: for ever. */
  readonly bucketTtlMs: number
  private readonly connection: RedisConnection
  private readonly queries: RedisQueries

  constructor(options: RedisOptions) {
    const ca = options.redisCaFile ? readCaFile(options.redisCaFile, 'Redis', 'redis', options.redisCaFile) : undefined
    const keys = new RedisKeys(validateRedisKey(options.redisKey))
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError(`invalid batch size ${batchSize}: use a positive integer`)
    const ttl = options.redisBucketTtlMs ?? DEFAULT_REDIS_BUCKET_TTL_MS
    if (!Number.isSafeInteger(ttl) || ttl < 0) throw new RangeError(`invalid Redis bucket TTL ${ttl}: use a duration, or 0 to keep buckets for ever`)
    const connection = new RedisConnection(options, ca)
    super('Redis', new RedisWriter(connection, keys, ttl), {
      batchSize,
      flushIntervalMs: 0,
      retryPolicy: {...DEFAULT_RETRY_POLICY, maxRetryTimeMs: options.maxRetryTimeMs},
    })
    this.connection = connection
    this.location = connection.location
    this.key = keys.allTime
    this.keys = keys
    this.bucketTtlMs = ttl
    this.queries = new RedisQueries(keys, () => this.commands(), connection.failures)
  }

  /** Connects and checks that the key is absent or holds a HyperLogLog. */
  async connect(): Promise<void> {
    const client = await this.commands()
    await this.connection.failures.request('reading the HyperLogLog', () => client.pfCount(this.key))
  }

  async count(): Promise<number> {
    return this.queries.count()
  }

  /** When the backend last wrote (epoch ms, this process's clock); undefined before the first write. */
  async freshness(): Promise<number | undefined> {
    return this.queries.lastWriteMs()
  }

  /**
   * Estimated distinct devices in the range (widened to whole UTC hours) and error codes. A range
   * needs a start (`sinceMs`): hourly keys can only be listed from one; without an end it runs to now.
   */
  async countUnique(query: CountQuery): Promise<number> {
    return this.queries.countUnique(query)
  }

  async countSeries(query: BoundedCountQuery, by: BucketSize): Promise<SeriesPoint[]> {
    return this.queries.countSeries(query, by)
  }

  /** The keys whose union answers the query. */
  keysFor(query: CountQuery): string[] {
    return keysFor(this.keys, query)
  }

  protected async connectForWrites(): Promise<void> {
    if (!this.connection.opened) await this.commands()
  }

  protected release(closed: BackendError): Promise<void> {
    return this.connection.close(closed)
  }

  private async commands(): Promise<RedisCommands> {
    this.assertOpen()
    return this.connection.commands()
  }
}
