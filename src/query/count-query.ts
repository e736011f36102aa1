/**
 * What `ipc count` (and the HTTP count endpoint) may ask a backend beyond the all-time count:
 * a half-open event-time range [since, until), a set of error codes, and a series per hour or day.
 * Event time is the parsed `timestamp` of each event, never the time it arrived.
 */
import {DurationError, parseDuration} from '../util/duration.js'
import {formatIsoMillis, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, parseTimestamp, TimestampError} from '../events/timestamp.js'

/** A time bound, error code or bucket size that cannot be used; the message names the flag. */
export class CountQueryError extends Error {
  override name = 'CountQueryError'
}

export const HOUR_MS = 3_600_000
export const DAY_MS = 86_400_000

export const BUCKET_SIZES = ['hour', 'day'] as const
export type BucketSize = (typeof BUCKET_SIZES)[number]
export const BUCKET_MS: Readonly<Record<BucketSize, number>> = {hour: HOUR_MS, day: DAY_MS}

/** A series longer than this is refused (a year of hours is 8,784). */
export const MAX_SERIES_BUCKETS = 10_000

/** Error codes are stored as Int8. */
export const MIN_ERROR_CODE = -128
export const MAX_ERROR_CODE = 127

export interface CountQuery {
  /** Inclusive lower bound of the event time, epoch ms; undefined: from the first event. */
  readonly sinceMs?: number
  /** Exclusive upper bound of the event time, epoch ms; undefined: no upper bound. */
  readonly untilMs?: number
  /** Devices that reported any of these codes (sorted, distinct); empty: any code. */
  readonly errorCodes: readonly number[]
}

/** A query with both bounds, as a series needs. */
export interface BoundedCountQuery extends CountQuery {
  readonly sinceMs: number
  readonly untilMs: number
}

export interface SeriesPoint {
  /** Start of the bucket (UTC hour or day), epoch ms. */
  readonly startMs: number
  /** Distinct devices in the part of the bucket inside the query's range. */
  readonly count: number
}

/** True when the query is the plain all-time count over every error code. */
export function isAllTime(query: CountQuery): boolean {
  return query.sinceMs === undefined && query.untilMs === undefined && query.errorCodes.length === 0
}

export function isBounded(query: CountQuery): query is BoundedCountQuery {
  return query.sinceMs !== undefined && query.untilMs !== undefined
}

const RELATIVE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/
const ERROR_CODE = /^[+-]?\d{1,4}$/

/**
 * Reads a time bound: anything `parseTimestamp` accepts (ISO 8601, no zone meaning UTC; epoch
 * seconds/ms/µs/ns), a date alone (`2024-09-18`, midnight UTC), `now`, or a relative time before
 * `nowMs` (`90s`, `15m`, `1h`, `24h`, `7d`, `2w`). Returns epoch ms.
 */
export function parseTimeBound(text: string, nowMs: number, flag = '--since'): number {
  const value = text.trim()
  if (value === 'now') return nowMs
  const relative = RELATIVE.exec(value)
  if (relative) {
    let ms: number
    try {
      ms = parseDuration(value)
    } catch (error) {
      if (error instanceof DurationError) throw new CountQueryError(`invalid ${flag} "${text}": ${error.message}`)
      throw error
    }
    const bound = nowMs - ms
    if (bound < MIN_TIMESTAMP_MS) throw new CountQueryError(`invalid ${flag} "${text}": reaches before the year 0000`)
    return bound
  }
  try {
    return parseTimestamp(DATE_ONLY.test(value) ? `${value}T00:00:00Z` : value).ms
  } catch (error) {
    if (error instanceof TimestampError) {
      throw new CountQueryError(
        `invalid ${flag} "${text}": ${error.reason}; use an ISO 8601 date-time (2024-09-18T14:00:00Z), a date (2024-09-18), ` +
          'an epoch number, now, or a time before now such as 30m, 24h or 7d',
      )
    }
    throw error
  }
}

/** Reads one error code: an integer in -128..127. */
export function parseErrorCode(text: string, name = '--error-code'): number {
  const value = text.trim()
  const code = ERROR_CODE.test(value) ? Number(value) : Number.NaN
  if (!Number.isInteger(code) || code < MIN_ERROR_CODE || code > MAX_ERROR_CODE) {
    throw new CountQueryError(`invalid ${name} "${text}": use an integer from ${MIN_ERROR_CODE} to ${MAX_ERROR_CODE}`)
  }
  return code
}

export function parseBucketSize(text: string, name = '--by'): BucketSize {
  if ((BUCKET_SIZES as readonly string[]).includes(text)) return text as BucketSize
  throw new CountQueryError(`invalid ${name} "${text}": use ${BUCKET_SIZES.join(' or ')}`)
}

/** How the options are called where they come from (flags by default; the HTTP API uses its parameter names). */
export interface QueryOptionNames {
  since: string
  until: string
  errorCode: string
  by: string
}

export const FLAG_NAMES: QueryOptionNames = {since: '--since', until: '--until', errorCode: '--error-code', by: '--by'}

/** The count flags as given (strings, undefined when absent). */
export interface CountQueryInput {
  since?: string
  until?: string
  errorCodes?: readonly string[]
  by?: string
}

export interface ParsedCountQuery {
  query: CountQuery
  /** Set when a series per bucket was asked for; the query is then bounded. */
  by?: BucketSize
}

/** True when any range, error-code or series option was given (the output then describes the query). */
export function hasQueryOptions(input: CountQueryInput): boolean {
  return input.since !== undefined || input.until !== undefined || (input.errorCodes?.length ?? 0) > 0 || input.by !== undefined
}

/**
 * Builds the query from the flags. `--until` defaults to now when `--since` is given; with neither,
 * the range is unbounded (every event ever stored). `--by` needs `--since`.
 */
export function buildCountQuery(input: CountQueryInput, nowMs: number, names: QueryOptionNames = FLAG_NAMES): ParsedCountQuery {
  const sinceMs = input.since === undefined ? undefined : parseTimeBound(input.since, nowMs, names.since)
  let untilMs = input.until === undefined ? undefined : parseTimeBound(input.until, nowMs, names.until)
  if (untilMs === undefined && sinceMs !== undefined) untilMs = nowMs
  if (sinceMs !== undefined && untilMs !== undefined && sinceMs >= untilMs) {
    throw new CountQueryError(
      `${names.since} (${formatIsoMillis(sinceMs)}) must be before ${names.until} (${formatIsoMillis(untilMs)}): the range [since, until) is empty`,
    )
  }
  const errorCodes = [...new Set((input.errorCodes ?? []).map((code) => parseErrorCode(code, names.errorCode)))].sort((a, b) => a - b)
  const query: CountQuery = {sinceMs, untilMs, errorCodes}
  if (input.by === undefined) return {query}
  const by = parseBucketSize(input.by, names.by)
  if (!isBounded(query)) throw new CountQueryError(`${names.by} needs ${names.since} (for example ${names.since} 24h ${names.by} hour)`)
  const buckets = bucketCount(query, by)
  if (buckets > MAX_SERIES_BUCKETS) {
    throw new CountQueryError(
      `${names.by} ${by} over this range gives ${buckets} buckets, more than ${MAX_SERIES_BUCKETS}: shorten the range` +
        (by === 'hour' ? ` or use ${names.by} day` : ''),
    )
  }
  return {query, by}
}

/** Start of the UTC hour or day containing `ms` (floor, also before 1970). */
export function bucketStart(ms: number, by: BucketSize): number {
  const size = BUCKET_MS[by]
  return Math.floor(ms / size) * size
}

/** Start of the first bucket at or after `ms`. */
export function bucketCeil(ms: number, by: BucketSize): number {
  const size = BUCKET_MS[by]
  return Math.ceil(ms / size) * size
}

export function bucketCount(query: BoundedCountQuery, by: BucketSize): number {
  return (bucketCeil(query.untilMs, by) - bucketStart(query.sinceMs, by)) / BUCKET_MS[by]
}

export interface Bucket {
  /** Aligned start of the bucket. */
  startMs: number
  /** The part of the bucket inside the query's range: [sinceMs, untilMs). */
  sinceMs: number
  untilMs: number
}

/** Every bucket the range touches, in order, each clipped to the range. */
export function seriesBuckets(query: BoundedCountQuery, by: BucketSize): Bucket[] {
  const size = BUCKET_MS[by]
  const buckets: Bucket[] = []
  for (let start = bucketStart(query.sinceMs, by); start < query.untilMs; start += size) {
    buckets.push({startMs: start, sinceMs: Math.max(start, query.sinceMs), untilMs: Math.min(start + size, query.untilMs)})
  }
  return buckets
}

/** Whether one event belongs to the query. */
export function matchesQuery(timestampMs: number, errorCode: number, query: CountQuery): boolean {
  if (query.sinceMs !== undefined && timestampMs < query.sinceMs) return false
  if (query.untilMs !== undefined && timestampMs >= query.untilMs) return false
  return query.errorCodes.length === 0 || query.errorCodes.includes(errorCode)
}

/** Fills the buckets a backend returned no row for with 0, in bucket order. */
export function denseSeries(query: BoundedCountQuery, by: BucketSize, counts: ReadonlyMap<number, number>): SeriesPoint[] {
  return seriesBuckets(query, by).map((bucket) => ({startMs: bucket.startMs, count: counts.get(bucket.startMs) ?? 0}))
}

/** The query as JSON output shows it. */
export interface CountQueryJson {
  since: string | null
  until: string | null
  error_codes: number[]
}

export function queryJson(query: CountQuery): CountQueryJson {
  return {
    since: query.sinceMs === undefined ? null : formatIsoMillis(query.sinceMs),
    until: query.untilMs === undefined ? null : formatIsoMillis(query.untilMs),
    error_codes: [...query.errorCodes],
  }
}

/** Every bound is a whole number of ms inside the years 0000-9999 (checked by backends on input from other callers). */
export function validateQuery(query: CountQuery): CountQuery {
  for (const [name, value] of [
    ['sinceMs', query.sinceMs],
    ['untilMs', query.untilMs],
  ] as const) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < MIN_TIMESTAMP_MS || value > MAX_TIMESTAMP_MS + 1)) {
      throw new CountQueryError(`${name} must be an integer epoch-ms time in the years 0000-9999, got ${value}`)
    }
  }
  if (query.sinceMs !== undefined && query.untilMs !== undefined && query.sinceMs >= query.untilMs) {
    throw new CountQueryError('the range [since, until) is empty')
  }
  for (const code of query.errorCodes) {
    if (!Number.isInteger(code) || code < MIN_ERROR_CODE || code > MAX_ERROR_CODE) {
      throw new CountQueryError(`error code must be an integer from ${MIN_ERROR_CODE} to ${MAX_ERROR_CODE}, got ${code}`)
    }
  }
  return query
}
