import {
  BUCKET_MS,
  bucketCeil,
  bucketStart,
  type BoundedCountQuery,
  type BucketSize,
  type CountQuery,
  denseSeries,
  type SeriesPoint,
  validateQuery,
} from '../../query/count-query.js'
import type {DeviceEvent} from '../backend.js'
import type {ClickHouseConnection} from './connection.js'
import type {EventsTable, QueryTables} from './events-table.js'
import {formatDateTime64, ROLLUP_END_MS, ROLLUP_MIN_MS, type TimestampLayout} from './schema.js'

export type {QueryTables} from './events-table.js'

/** At most this many events are read back by `readEvents()`. */
export const READ_EVENTS_LIMIT = 10_000

/** Where the parts of a range are counted from: whole hours from the rollup, the rest from the events. */
export interface RangePlan {
  rollupHours?: {sinceMs: number; untilMs: number}
  /** Raw event ranges; undefined bounds are open. */
  raw: Array<{sinceMs?: number; untilMs?: number}>
}

/** Splits a range into whole UTC hours the hourly rollup can answer and the parts left for the events table. */
export function planRange(sinceMs: number | undefined, untilMs: number | undefined, useRollups: boolean): RangePlan {
  if (!useRollups) return {raw: [{sinceMs, untilMs}]}
  const first = Math.max(sinceMs === undefined ? ROLLUP_MIN_MS : bucketCeil(sinceMs, 'hour'), ROLLUP_MIN_MS)
  const end = Math.min(untilMs === undefined ? ROLLUP_END_MS : bucketStart(untilMs, 'hour'), ROLLUP_END_MS)
  if (first >= end) return {raw: [{sinceMs, untilMs}]}
  const raw: RangePlan['raw'] = []
  if (sinceMs === undefined || sinceMs < first) raw.push({sinceMs, untilMs: first})
  if (untilMs === undefined || end < untilMs) raw.push({sinceMs: end, untilMs})
  return {rollupHours: {sinceMs: first, untilMs: end}, raw}
}

function errorCodeCondition(codes: readonly number[]): string[] {
  return codes.length === 0 ? [] : [`error_code IN (${codes.map((code) => String(Math.trunc(code))).join(', ')})`]
}

/**
 * WHERE conditions selecting raw events in [sinceMs, untilMs), exactly whatever the stored times.
 * - datetime64: a bound from 1970 to 2106 is a DateTime64 literal every server reads, compared with
 *   the partition key, so parts outside the range are skipped; a bound outside compares epoch
 *   milliseconds (servers differ in the DateTime64 years they read from text).
 * - epoch-ms: `timestamp_ms` only. The whole-second `timestamp` of the partition key wraps around
 *   for events outside 1970-2106, so a condition on it could drop such events.
 */
export function rawRangeConditions(layout: TimestampLayout, sinceMs: number | undefined, untilMs: number | undefined): string[] {
  const conditions: string[] = []
  const bound = (operator: '>=' | '<', ms: number) => {
    if (layout === 'epoch-ms') return `timestamp_ms ${operator} ${ms}`
    if (ms >= ROLLUP_MIN_MS && ms <= ROLLUP_END_MS) return `timestamp ${operator} toDateTime64('${formatDateTime64(ms)}', 3, 'UTC')`
    return `toUnixTimestamp64Milli(timestamp) ${operator} ${ms}`
  }
  if (sinceMs !== undefined) conditions.push(bound('>=', sinceMs))
  if (untilMs !== undefined) conditions.push(bound('<', untilMs))
  return conditions
}

function where(conditions: readonly string[]): string {
  return conditions.length === 0 ? '' : ` WHERE ${conditions.join(' AND ')}`
}

/** Epoch-ms expression of the raw event time. */
function rawEventMs(layout: TimestampLayout): string {
  return layout === 'datetime64' ? 'toUnixTimestamp64Milli(timestamp)' : 'timestamp_ms'
}

/** The device-IP sources (sub-selects) answering a range query, optionally with a bucket column. */
function rangeSources(tables: QueryTables, layout: TimestampLayout, query: CountQuery, useRollups: boolean, by?: BucketSize): string[] {
  const codes = errorCodeCondition(query.errorCodes)
  const plan = planRange(query.sinceMs, query.untilMs, useRollups)
  const sources: string[] = []
  if (plan.rollupHours) {
    const {sinceMs, untilMs} = plan.rollupHours
    const bucket = by === undefined ? '' : `toInt64(intDiv(toUInt32(hour), ${BUCKET_MS[by] / 1000}) * ${BUCKET_MS[by]}) AS bucket, `
    sources.push(
      `SELECT ${bucket}device_ip FROM ${tables.hourly}` + where([`hour >= toDateTime(${sinceMs / 1000})`, `hour < toDateTime(${untilMs / 1000})`, ...codes]),
    )
  }
  if (plan.raw.length > 0) {
    const ms = rawEventMs(layout)
    const size = by === undefined ? 0 : BUCKET_MS[by]
    // Floor to the bucket also before 1970 (% keeps the sign of the dividend).
    const bucket = by === undefined ? '' : `toInt64(${ms} - ((${ms} % ${size}) + ${size}) % ${size}) AS bucket, `
    // Both partial edges in one pass: the events table is ordered by device, so a time range
    // reads the whole of every partition (month) it touches.
    const ranges = plan.raw.map((range) => rawRangeConditions(layout, range.sinceMs, range.untilMs))
    const time = ranges.length === 1 ? ranges[0] : [`(${ranges.map((conditions) => `(${conditions.join(' AND ') || '1'})`).join(' OR ')})`]
    sources.push(`SELECT ${bucket}device_ip FROM ${tables.events}${where([...time, ...codes])}`)
  }
  return sources
}

/**
 * The query for the distinct devices of `query`: all-time from the devices rollup, error codes alone
 * from the hourly rollup, ranges from the hourly rollup for whole hours plus the events table for the
 * partial hours at the ends (exact to the millisecond). Without rollups everything reads the events.
 */
export function countUniqueSql(tables: QueryTables, layout: TimestampLayout, query: CountQuery, useRollups: boolean): string {
  const codes = errorCodeCondition(query.errorCodes)
  if (query.sinceMs === undefined && query.untilMs === undefined) {
    if (!useRollups) return `SELECT uniqExact(device_ip) AS count FROM ${tables.events}${where(codes)}`
    if (codes.length === 0) return `SELECT uniqExact(device_ip) AS count FROM ${tables.devices}`
    // Error codes of all time: the hourly rollup, plus the events outside the hours it holds.
  }
  const sources = rangeSources(tables, layout, query, useRollups)
  if (sources.length === 1) return sources[0].replace(/^SELECT device_ip FROM/, 'SELECT uniqExact(device_ip) AS count FROM')
  return `SELECT uniqExact(device_ip) AS count FROM (\n  ${sources.join('\n  UNION ALL\n  ')}\n)`
}

/** Distinct devices per bucket (epoch-ms `bucket`, only buckets with events) of a bounded query. */
export function countSeriesSql(tables: QueryTables, layout: TimestampLayout, query: BoundedCountQuery, by: BucketSize, useRollups: boolean): string {
  const sources = rangeSources(tables, layout, query, useRollups, by)
  return `SELECT bucket, uniqExact(device_ip) AS count FROM (\n  ${sources.join('\n  UNION ALL\n  ')}\n) GROUP BY bucket ORDER BY bucket`
}

type Count = {count: string | number}

/**
 * The reads of the clickhouse backend, over the events table and rollups as {@link EventsTable}
 * prepared them; each connects first (`ready`) when it needs to know them.
 */
export class ClickHouseQueries {
  constructor(
    private readonly connection: ClickHouseConnection,
    private readonly table: EventsTable,
    private readonly ready: () => Promise<void>,
  ) {}

  /** Distinct device IPs stored, from the devices rollup. */
  async count(): Promise<number> {
    await this.ready()
    return this.countOf(countUniqueSql(this.table.queryTables, this.layout, {errorCodes: []}, this.table.rollupsReady))
  }

  async countUnique(query: CountQuery): Promise<number> {
    validateQuery(query)
    await this.ready()
    return this.countOf(countUniqueSql(this.table.queryTables, this.layout, query, this.table.rollupsReady))
  }

  async countSeries(query: BoundedCountQuery, by: BucketSize): Promise<SeriesPoint[]> {
    validateQuery(query)
    await this.ready()
    const sql = countSeriesSql(this.table.queryTables, this.layout, query, by, this.table.rollupsReady)
    const rows = await this.connection.select<{bucket: string | number; count: string | number}>(`counting distinct device IPs per ${by}`, sql)
    return denseSeries(query, by, new Map(rows.map((row) => [Number(row.bucket), Number(row.count)])))
  }

  /**
   * Epoch ms of the newest event stored (the largest event timestamp); undefined while the table is
   * empty. One column of the events table is read, duplicates and all: they do not change the maximum.
   */
  async newestEventMs(): Promise<number | undefined> {
    await this.ready()
    const [row] = await this.connection.select<{events: string | number; newest: string | number}>(
      'reading the newest event time',
      `SELECT count() AS events, max(${rawEventMs(this.layout)}) AS newest FROM ${this.table.queryTables.events}`,
    )
    return Number(row.events) === 0 ? undefined : Number(row.newest)
  }

  /** Rows in the events table as stored, copies from replays included until background merges drop them. */
  async rowCount(): Promise<number> {
    await this.ready()
    return this.countOf(`SELECT count() AS count FROM ${this.table.qualified}`, 'counting rows')
  }

  /** Events stored, each once: rows of the deduplicated view (of the table on the unkeyed layout). */
  async eventCount(): Promise<number> {
    await this.ready()
    return this.countOf(`SELECT count() AS count FROM ${this.table.eventsOnce()}`, 'counting events')
  }

  /** Reads stored events back, each once, oldest first, at most READ_EVENTS_LIMIT (for checks and tools). */
  async readEvents(): Promise<DeviceEvent[]> {
    await this.ready()
    const timestampMs = this.layout === 'datetime64' ? 'toUnixTimestamp64Milli(timestamp)' : 'timestamp_ms'
    const rows = await this.connection.select<{timestamp_ms: string | number; device_ip: string; error_code: number}>(
      'reading events',
      `SELECT ${timestampMs} AS timestamp_ms, device_ip, error_code FROM ${this.table.eventsOnce()} ORDER BY timestamp_ms, device_ip LIMIT ${READ_EVENTS_LIMIT}`,
    )
    return rows.map((row) => ({timestampMs: Number(row.timestamp_ms), deviceIp: row.device_ip, errorCode: Number(row.error_code)}))
  }

  private get layout(): TimestampLayout {
    return this.table.layout as TimestampLayout
  }

  private async countOf(sql: string, action = 'counting distinct device IPs'): Promise<number> {
    const [row] = await this.connection.select<Count>(action, sql)
    return Number(row.count)
  }
}
