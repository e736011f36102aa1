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
import type {BackendFailures} from '../failures.js'
import type {RedisCommands} from './connection.js'
import type {RedisKeys} from './keys.js'

/** Keys per PFCOUNT; a union of more keys is PFMERGEd into a temporary key in chunks of this size. */
export const PFCOUNT_MAX_KEYS = 1000
/** A temporary union key disappears after this long even if the process that made it dies. */
const TEMPORARY_KEY_TTL_SECONDS = 60

/**
 * The keys whose union answers the query. A range needs a start (`sinceMs`): hourly keys can only
 * be listed from one; without an end it runs to now.
 */
export function keysFor(keys: RedisKeys, query: CountQuery): string[] {
  if (query.sinceMs === undefined && query.untilMs === undefined) {
    return query.errorCodes.length === 0 ? [keys.allTime] : query.errorCodes.map((code) => keys.errorCode(code))
  }
  if (query.sinceMs === undefined) {
    throw new CountQueryError('redis counts time ranges from hourly buckets, which can only be listed from a start: give --since as well as --until')
  }
  const found: string[] = []
  const end = bucketCeil(query.untilMs ?? Date.now() + 1, 'hour')
  for (let hour = bucketStart(query.sinceMs, 'hour'); hour < end; hour += HOUR_MS) {
    if (query.errorCodes.length === 0) found.push(keys.hour(hour))
    else for (const code of query.errorCodes) found.push(keys.hourErrorCode(hour, code))
  }
  return found
}

/**
 * The reads of the redis backend: each query is the PFCOUNT of the union of the keys it needs
 * ({@link keysFor}), widened outward to whole UTC hours.
 */
export class RedisQueries {
  /** `commands` gives the open connection (opening it if needed); `failures` words what fails on it. */
  constructor(
    private readonly keys: RedisKeys,
    private readonly commands: () => Promise<RedisCommands>,
    private readonly failures: BackendFailures,
  ) {}

  async count(): Promise<number> {
    const client = await this.commands()
    return this.failures.request('PFCOUNT failed', () => client.pfCount(this.keys.allTime))
  }

  /** When the backend last wrote (epoch ms); undefined before its first write. */
  async lastWriteMs(): Promise<number | undefined> {
    const client = await this.commands()
    const value = await this.failures.request('reading the last write time', () => client.get(this.keys.lastWrite()))
    return value === null ? undefined : Number(value)
  }

  /** Estimated distinct devices in the range (widened to whole UTC hours) and error codes. */
  async countUnique(query: CountQuery): Promise<number> {
    validateQuery(query)
    if (isAllTime(query)) return this.count()
    const keys = keysFor(this.keys, query)
    const client = await this.commands()
    return this.failures.request('PFCOUNT failed', () => this.countUnion(client, keys))
  }

  async countSeries(query: BoundedCountQuery, by: BucketSize): Promise<SeriesPoint[]> {
    validateQuery(query)
    const buckets = seriesBuckets(query, by)
    const client = await this.commands()
    const counts = await this.failures.request('PFCOUNT failed', () =>
      Promise.all(buckets.map((bucket) => this.countUnion(client, keysFor(this.keys, {...query, sinceMs: bucket.sinceMs, untilMs: bucket.untilMs})))),
    )
    return denseSeries(query, by, new Map(buckets.map((bucket, index) => [bucket.startMs, counts[index]])))
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
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = []
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size))
  return chunks
}
