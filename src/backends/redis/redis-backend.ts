import {createClient, createCluster, ErrorReply} from '@redis/client'
import {EventEmitter} from 'node:events'
import {
  type BoundedCountQuery,
  bucketCeil,
  bucketStart,
  type BucketSize,
  type CountQuery,
  CountQueryError,
  denseSeries,
  HOUR_MS,
  isAllTime,
  seriesBuckets,
  type SeriesPoint,
  validateQuery,
} from '../../query/count-query.js'
import {validateRedisKey} from '../identifiers.js'
import {errorReason} from '../../util/errors.js'
import {
  type AddReceipt,
  BackendError,
  type BackendEvents,
  DEFAULT_RETRY_POLICY,
  type DeviceEvent,
  type RangeCountBackend,
  readCaFile,
  relayBackendEvents,
  urlWithoutCredentials,
} from '../backend.js'
import {BatchWriter, type WriteBatch} from '../batch-writer.js'
import {DEFAULT_REDIS_BUCKET_TTL_MS, type RedisOptions} from './options.js'
import {type ClusterSeed, parseClusterNodes} from './cluster-nodes.js'
import {RedisKeys} from './keys.js'
import {WRITE_SCRIPT, WRITE_SCRIPT_SHA1} from './scripts.js'
import {settleWithin} from '../../util/async.js'

export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000
/** Keys per PFCOUNT; a union of more keys is PFMERGEd into a temporary key in chunks of this size. */
export const PFCOUNT_MAX_KEYS = 1000
/** A temporary union key disappears after this long even if the process that made it dies. */
const TEMPORARY_KEY_TTL_SECONDS = 60

/** Devices per script call; a larger batch becomes several calls, pipelined in the same round trip. */
export const SCRIPT_MAX_DEVICES = 50_000

/** Events per write when `batchSize` is not given; while a write is in flight the next collects up to this many. */
export const DEFAULT_BATCH_SIZE = 10_000

/** Replies that say the server is busy or temporarily unable to write: worth retrying. */
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|CLUSTERDOWN|READONLY|OOM)\b/

type SingleClient = ReturnType<typeof createClient>
type ClusterClient = ReturnType<typeof createCluster>

/** The commands the backend uses, which a single Redis and a Redis Cluster both offer. */
interface RedisCommands {
  readonly isOpen: boolean
  pfAdd(key: string, elements: string[]): Promise<number>
  pfCount(keys: string | string[]): Promise<number>
  pfMerge(destination: string, sources: string[]): Promise<unknown>
  expire(key: string, seconds: number): Promise<unknown>
  eval(script: string, options: {keys: string[]; arguments: string[]}): Promise<unknown>
  evalSha(sha1: string, options: {keys: string[]; arguments: string[]}): Promise<unknown>
  del(keys: string | string[]): Promise<number>
  close(): Promise<void>
  destroy(): void
}

/**
 * Approximate count in Redis HyperLogLogs (standard error 0.81%; at most 12 KB per key whatever the
 * count, a few hundred bytes while a key holds few devices).
 *
 * Keys (K is the configured key, `{K}` its hash tag; see {@link RedisKeys}):
 * - `K`: every device ever (the all-time count),
 * - `{K}:e:<code>`: devices that ever reported that error code,
 * - `{K}:h:<YYYYMMDDHH>`: devices with an event in that UTC hour,
 * - `{K}:he:<YYYYMMDDHH>:<code>`: devices that reported that code in that hour.
 * Hourly keys expire `bucketTtlMs` after their hour ended (0: never); events for an hour already past
 * that go only into the all-time and error-code keys. A time range is counted as the union (PFCOUNT
 * over several keys) of the hours it touches, so it is widened outward to whole UTC hours; ranges of
 * more than PFCOUNT_MAX_KEYS keys are PFMERGEd into a temporary key in chunks first.
 *
 * Writes are combined (group commit, see {@link BatchWriter}): `add()` puts the events' distinct IPs
 * into the sets of the keys they touch and returns; one write goes out as soon as none is in flight,
 * holding everything added since the last one (at most `batchSize` events; a full batch makes
 * `add()` wait). A write is one command, one round trip ({@link WRITE_SCRIPT}): PFADD into every key
 * plus EXPIREAT of the hourly keys. The receipt resolves once Redis acknowledged the write holding
 * its events; how durable an acknowledged write is depends on the server's persistence settings
 * (RDB snapshots / AOF). Small consumer batches thus cost one round trip per write rather than one
 * each, and a device repeated across them is sent once.
 *
 * With `redisClusterNodes` the backend talks to a Redis Cluster: all keys of one base key share a
 * hash slot (the `{K}` tag), so they live on one master and multi-key commands work.
 *
 * Connections: node-redis' own reconnect loop is off. A lost connection is re-opened by the next
 * operation; `connect()` and `count()` fail at once with a BackendError, while writes are retried with
 * capped exponential backoff (each failure reported as a `write-failed` event) so a consumer pauses while
 * Redis is down instead of losing events. `close()` writes what is buffered if Redis takes it, and
 * stops retrying a write that is failing (its receipts reject).
 */
export class RedisBackend extends EventEmitter<BackendEvents> implements RangeCountBackend {
  readonly name = 'redis'
  readonly exact = false
  readonly timeResolution = 'hour'
  readonly location: string
  readonly key: string
  readonly keys: RedisKeys
  /** How long an hourly key is kept after its hour ended; 0: for ever. */
  readonly bucketTtlMs: number
  private readonly url: string
  /** ACL credentials given apart from the URL (they win over the URL's). */
  private readonly credentials: {username?: string; password?: string}
  private readonly ca?: Buffer
  private readonly cluster?: ClusterSeed
  private readonly requestTimeoutMs: number
  private readonly writer: BatchWriter<DeviceEvent, DeviceSets>
  private readonly closing = new AbortController()
  private closed?: Promise<void>
  private client?: RedisCommands
  private opening?: Promise<RedisCommands>

  constructor(options: RedisOptions) {
    super()
    this.url = options.redisUrl
    this.credentials = {
      ...(options.redisUsername ? {username: options.redisUsername} : {}),
      ...(options.redisPassword ? {password: options.redisPassword} : {}),
    }
    if (options.redisCaFile) this.ca = readCaFile(options.redisCaFile, 'Redis', 'redis', options.redisCaFile)
    this.key = validateRedisKey(options.redisKey)
    this.keys = new RedisKeys(this.key)
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError(`invalid batch size ${batchSize}: use a positive integer`)
    this.writer = new BatchWriter({
      batchSize,
      flushIntervalMs: 0,
      newBatch: () => new DeviceSets(),
      write: (batch) => this.write(this.writesFor(batch, Date.now())),
      retryPolicy: {...DEFAULT_RETRY_POLICY, maxRetryTimeMs: options.maxRetryTimeMs},
      isRetryable: isTransient,
      describe: (batch) => `writing ${batch.size} events`,
      failure: (action, error) => this.failure(action, error),
      closedError: () => this.closedError(),
    })
    relayBackendEvents(this.writer, this)
    const ttl = options.redisBucketTtlMs ?? DEFAULT_REDIS_BUCKET_TTL_MS
    if (!Number.isSafeInteger(ttl) || ttl < 0) throw new RangeError(`invalid Redis bucket TTL ${ttl}: use a duration, or 0 to keep buckets for ever`)
    this.bucketTtlMs = ttl
    if (options.redisClusterNodes !== undefined) {
      this.cluster = parseClusterNodes(options.redisClusterNodes)
      this.location = `redis-cluster://${this.cluster.nodes.map((node) => `${node.host.includes(':') ? `[${node.host}]` : node.host}:${node.port}`).join(',')}`
      return
    }
    this.location = urlWithoutCredentials(options.redisUrl)
    if (!isRedisUrl(options.redisUrl)) {
      throw new BackendError(`invalid Redis URL "${this.location}": use redis://[user:password@]host:port[/db] or rediss://...`, this.name, this.location)
    }
  }

  /** Connects and checks that the key is absent or holds a HyperLogLog. */
  async connect(): Promise<void> {
    const client = await this.connectedClient()
    await this.request('reading the HyperLogLog', () => client.pfCount(this.key))
  }

  async add(events: readonly DeviceEvent[]): Promise<AddReceipt> {
    return this.writer.add(events)
  }

  /** Writes everything added so far; resolves when Redis acknowledged it. */
  async flush(): Promise<void> {
    return this.writer.flush()
  }

  get unwrittenEvents(): number {
    return this.writer.unwritten
  }

  async count(): Promise<number> {
    const client = await this.connectedClient()
    return this.request('PFCOUNT failed', () => client.pfCount(this.key))
  }

  /**
   * Estimated distinct devices in the range (widened to whole UTC hours) and error codes. A range
   * needs a start (`sinceMs`): hourly keys can only be listed from one; without an end it runs to now.
   */
  async countUnique(query: CountQuery): Promise<number> {
    validateQuery(query)
    if (isAllTime(query)) return this.count()
    const keys = this.keysFor(query)
    const client = await this.connectedClient()
    return this.request('PFCOUNT failed', () => this.countUnion(client, keys))
  }

  async countSeries(query: BoundedCountQuery, by: BucketSize): Promise<SeriesPoint[]> {
    validateQuery(query)
    const buckets = seriesBuckets(query, by)
    const client = await this.connectedClient()
    const counts = await this.request('PFCOUNT failed', () =>
      Promise.all(buckets.map((bucket) => this.countUnion(client, this.keysFor({...query, sinceMs: bucket.sinceMs, untilMs: bucket.untilMs})))),
    )
    return denseSeries(query, by, new Map(buckets.map((bucket, index) => [bucket.startMs, counts[index]])))
  }

  /** The keys whose union answers the query. */
  keysFor(query: CountQuery): string[] {
    if (query.sinceMs === undefined && query.untilMs === undefined) {
      return query.errorCodes.length === 0 ? [this.key] : query.errorCodes.map((code) => this.keys.errorCode(code))
    }
    if (query.sinceMs === undefined) {
      throw new CountQueryError('redis counts time ranges from hourly buckets, which can only be listed from a start: give --since as well as --until')
    }
    const keys: string[] = []
    const end = bucketCeil(query.untilMs ?? Date.now() + 1, 'hour')
    for (let hour = bucketStart(query.sinceMs, 'hour'); hour < end; hour += HOUR_MS) {
      if (query.errorCodes.length === 0) keys.push(this.keys.hour(hour))
      else for (const code of query.errorCodes) keys.push(this.keys.hourErrorCode(hour, code))
    }
    return keys
  }

  /** The script calls that write one batch; hourly keys past their TTL are left out. */
  private writesFor(batch: DeviceSets, nowMs: number): KeyWrites {
    const calls: ScriptCall[] = []
    let call: ScriptCall | undefined
    for (const [group, devices] of batch.byHourCode) {
      const hour = Math.floor(group / 256)
      const code = group - hour * 256 - 128
      const keepsHour = this.bucketTtlMs === 0 || (hour + 1) * HOUR_MS + this.bucketTtlMs > nowMs
      const expiresAt = this.bucketTtlMs === 0 ? 0 : Math.ceil(((hour + 1) * HOUR_MS + this.bucketTtlMs) / 1000)
      const iterator = devices.values()
      for (let left = devices.size; left > 0;) {
        if (!call || call.devices >= SCRIPT_MAX_DEVICES) calls.push((call = new ScriptCall(this.key)))
        const take = Math.min(left, SCRIPT_MAX_DEVICES - call.devices)
        const codeIndex = call.keyIndex(this.keys.errorCode(code), 0)
        const hourIndex = keepsHour ? call.keyIndex(this.keys.hour(hour * HOUR_MS), expiresAt) : 0
        const hourCodeIndex = keepsHour ? call.keyIndex(this.keys.hourErrorCode(hour * HOUR_MS, code), expiresAt) : 0
        const separate: string[] = []
        const joined: string[] = []
        for (let index = 0; index < take; index++) {
          const device = iterator.next().value as string
          if (device === '' || device.includes('\n')) separate.push(device)
          else joined.push(device)
        }
        call.groups.push(String(codeIndex), String(hourIndex), String(hourCodeIndex), String(separate.length), ...separate, joined.join('\n'))
        call.devices += take
        left -= take
      }
    }
    return calls.map((each) => each.arguments())
  }

  /** PFCOUNT of the union of `keys`; through a temporary PFMERGE key when there are many. */
  private async countUnion(client: RedisCommands, keys: string[]): Promise<number> {
    if (keys.length === 0) return 0
    if (keys.length <= PFCOUNT_MAX_KEYS) return client.pfCount(keys)
    const temporary = this.keys.temporary()
    // Issued in one tick, so pipelined and run in this order on the one node holding the slot.
    const merges = chunk(keys, PFCOUNT_MAX_KEYS).map((sources) => client.pfMerge(temporary, sources))
    const expire = client.expire(temporary, TEMPORARY_KEY_TTL_SECONDS)
    const count = client.pfCount(temporary)
    const removed = client.del(temporary)
    const [result] = await Promise.all([count, ...merges, expire, removed])
    return result as number
  }

  /**
   * Writes what is buffered if Redis takes it (a write that is failing is not retried any more: its
   * receipts reject, and so does `close()`), then closes the connection.
   */
  close(): Promise<void> {
    // A later call waits for the first instead of closing the connection under its flush; a
    // failure is reported by the first call only.
    if (this.closed) return this.closed.catch(() => {})
    this.closed = this.closeOnce()
    return this.closed
  }

  private async closeOnce(): Promise<void> {
    try {
      await this.writer.close({retry: false})
    } finally {
      this.closing.abort(this.closedError())
      const client = this.client ?? (await this.opening?.catch(() => undefined))
      this.client = undefined
      if (client?.isOpen) await closeWithin(client, this.requestTimeoutMs)
    }
  }

  private closedError(): BackendError {
    return new BackendError(`Redis backend at ${this.location} was closed before the write succeeded`, this.name, this.location)
  }

  private async write(writes: KeyWrites): Promise<void> {
    const client = await this.connectedClient()
    const run = async (call: KeyWrites[number]) => {
      const options = {keys: call.keys, arguments: call.args}
      try {
        await client.evalSha(WRITE_SCRIPT_SHA1, options)
      } catch (error) {
        // The server (a restarted one, or another cluster node after a failover) does not have the script yet.
        if (!(error instanceof ErrorReply && error.message.startsWith('NOSCRIPT'))) throw error
        await client.eval(WRITE_SCRIPT, options)
      }
    }
    try {
      // Issued in the same tick: pipelined by node-redis, one round trip for all calls.
      await Promise.all(writes.map(run))
    } catch (error) {
      // A cluster client stays "open" while one node's connection is gone: start afresh next time.
      if (this.cluster && !(error instanceof ErrorReply) && this.client === client) this.discardClient()
      throw error
    }
  }

  private async connectedClient(): Promise<RedisCommands> {
    if (this.closing.signal.aborted) throw this.closing.signal.reason
    if (this.client && (this.cluster ? this.client.isOpen : (this.client as unknown as SingleClient).isReady)) return this.client
    this.opening ??= this.open().finally(() => {
      this.opening = undefined
    })
    return this.opening
  }

  private discardClient(): void {
    const client = this.client
    this.client = undefined
    if (client?.isOpen) client.destroy()
  }

  private async open(): Promise<RedisCommands> {
    this.discardClient()
    const client = this.cluster ? this.createClusterClient(this.cluster) : this.createSingleClient()
    // Failures reach the caller through the command or connect that hit them; without a listener
    // node would treat the client's 'error' events as uncaught.
    client.on('error', () => {})
    try {
      await client.connect()
    } catch (error) {
      if (client.isOpen) client.destroy()
      const reason = connectFailureReason(error, this.tls, this.connectTimeoutMs)
      throw new BackendError(`cannot connect to Redis at ${this.location}: ${reason}`, this.name, this.location, {cause: error, retriable: isTransient(error)})
    }
    if (this.closing.signal.aborted) {
      client.destroy()
      throw this.closing.signal.reason
    }
    this.client = client as unknown as RedisCommands
    return this.client
  }

  private get tls(): boolean {
    return this.cluster ? this.cluster.tls : this.url.startsWith('rediss:')
  }

  /** Shorter than the caller's own timeout, so a connection that never completes says why it failed. */
  private get connectTimeoutMs(): number {
    return Math.max(500, Math.floor(this.requestTimeoutMs * 0.8))
  }

  private createSingleClient(): SingleClient {
    const tls = this.url.startsWith('rediss:')
    return createClient({
      url: this.url,
      ...this.credentials,
      disableOfflineQueue: true,
      commandOptions: {timeout: this.requestTimeoutMs},
      socket: {connectTimeout: this.connectTimeoutMs, reconnectStrategy: false, ...(tls ? {tls: true as const, ca: this.ca} : {})},
    })
  }

  private createClusterClient(seed: ClusterSeed): ClusterClient {
    const socket = {connectTimeout: this.connectTimeoutMs, reconnectStrategy: false as const, ...(seed.tls ? {tls: true as const, ca: this.ca} : {})}
    return createCluster({
      rootNodes: seed.nodes.map((node) => ({socket: {...socket, host: node.host, port: node.port}})),
      defaults: {username: seed.username, password: seed.password, ...this.credentials, disableOfflineQueue: true, socket},
      commandOptions: {timeout: this.requestTimeoutMs},
    })
  }

  private async request<T>(action: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (error) {
      throw this.failure(action, error)
    }
  }

  private failure(action: string, error: unknown): BackendError {
    if (error instanceof BackendError) {
      return new BackendError(`${error.message}; ${action}`, this.name, this.location, {cause: error.cause ?? error, retriable: error.retriable})
    }
    return new BackendError(`Redis at ${this.location}: ${action}: ${errorReason(error)}`, this.name, this.location, {
      cause: error,
      retriable: isTransient(error),
    })
  }
}

function isRedisUrl(url: string): boolean {
  try {
    const protocol = new URL(url).protocol
    return protocol === 'redis:' || protocol === 'rediss:'
  } catch {
    return false
  }
}

/** Connection problems, timeouts and busy/loading replies are transient; WRONGTYPE, NOAUTH etc. are not. */
function isTransient(error: unknown): boolean {
  const cause = error instanceof BackendError && error.cause !== undefined ? error.cause : error
  if (cause instanceof ErrorReply) return TRANSIENT_REPLY.test(cause.message)
  return true
}

/**
 * What one write holds: the distinct devices of the events added since the last write, per (UTC hour,
 * error code) as one number, `hour * 256 + code + 128` (error codes are -128..127).
 */
class DeviceSets implements WriteBatch<DeviceEvent> {
  size = 0
  readonly byHourCode = new Map<number, Set<string>>()

  append({deviceIp, errorCode, timestampMs}: DeviceEvent): void {
    this.size++
    const group = Math.floor(timestampMs / HOUR_MS) * 256 + errorCode + 128
    let devices = this.byHourCode.get(group)
    if (!devices) this.byHourCode.set(group, (devices = new Set()))
    devices.add(deviceIp)
  }
}

/** One WRITE_SCRIPT call being built: its keys (each once, the all-time key first), expiries and groups. */
class ScriptCall {
  readonly keys: string[]
  private readonly indexes = new Map<string, number>()
  private readonly expiries: string[] = []
  readonly groups: string[] = []
  devices = 0

  constructor(allTimeKey: string) {
    this.keys = [allTimeKey]
  }

  /** The 1-based index of `key` in KEYS, adding it (with its expiry, 0 for none) the first time. */
  keyIndex(key: string, expiresAt: number): number {
    let index = this.indexes.get(key)
    if (index === undefined) {
      this.keys.push(key)
      index = this.keys.length
      this.indexes.set(key, index)
      if (expiresAt > 0) this.expiries.push(String(index), String(expiresAt))
    }
    return index
  }

  arguments(): {keys: string[]; args: string[]} {
    return {keys: this.keys, args: [String(this.expiries.length / 2)].concat(this.expiries, this.groups)}
  }
}

/** The arguments of the WRITE_SCRIPT calls of one write. */
type KeyWrites = Array<{keys: string[]; args: string[]}>

function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = []
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size))
  return chunks
}

async function closeWithin(client: RedisCommands, timeoutMs: number): Promise<void> {
  const result = await settleWithin(
    client.close().then(() => 'closed' as const),
    timeoutMs,
  )
  if (result === undefined && client.isOpen) client.destroy()
}

/**
 * Why a connection failed, in the words a user can act on: a TLS client against a plaintext port
 * waits for a handshake that never comes, and a plaintext client against a TLS port is cut off.
 */
export function connectFailureReason(error: unknown, tls: boolean, connectTimeoutMs: number): string {
  const reason = errorReason(error)
  if (tls && /timeout/i.test(reason)) {
    return `TLS handshake failed: no TLS answer within ${connectTimeoutMs} ms (a plaintext port? it takes redis:// URLs)`
  }
  if (!tls && /socket closed unexpectedly|ECONNRESET/i.test(reason)) {
    return `the server closed the connection (${reason}): a TLS port? it takes rediss:// URLs`
  }
  return reason
}
