/**
 * Strict, fast timestamp parsing for event timestamps and `ipc parse-ts`.
 *
 * Accepted shapes (after stripping surrounding whitespace and one matching pair of ' or " quotes):
 * - ISO 8601 / RFC 3339 date-times `YYYY-MM-DDTHH:mm:ss[.f{1,9}][zone]`, with `T`, `t` or one
 *   space between date and time. Seconds may be left out (`YYYY-MM-DDTHH:mm`, as HTML
 *   datetime-local and many log formats write it); a fraction then is not allowed.
 *   Zone: `Z`, `z`, `±HH:MM`, `±HHMM`, or none; **no zone means UTC**, never local time.
 * - Epoch numbers (JS numbers or digit strings, optional leading `-`, optional decimals), unit by
 *   the magnitude of the absolute value v: v < 1e11 seconds, < 1e14 milliseconds,
 *   < 1e17 microseconds, otherwise nanoseconds.
 *
 * Results are epoch milliseconds UTC: sub-millisecond precision is truncated towards -infinity
 * (floor), so a value never moves into the next second, and a negative epoch with a fraction moves
 * to the earlier millisecond, like every other instant before it. Dates are validated field by
 * field (no rollover of 2021-02-30), leap second 60 is rejected, and only years 0000-9999 are
 * accepted, also for epochs and after applying a zone offset.
 */
import {isoOfMillis} from './civil-time.js'
import {parseEpochDigits, parseNumber} from './timestamp-epoch.js'
import {fail, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, OUT_OF_RANGE, type ParsedTimestamp, type TimestampFailure} from './timestamp-formats.js'
import {parseIso} from './timestamp-iso.js'

export {MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, type ParsedTimestamp, TIMESTAMP_FORMATS, type TimestampFailure, type TimestampFormat} from './timestamp-formats.js'

/** An input is not an accepted timestamp; `reason` says why, `input` is what was given. */
export class TimestampError extends Error {
  override name = 'TimestampError'
  constructor(
    readonly input: unknown,
    readonly reason: string,
  ) {
    super(`invalid timestamp ${describeInput(input)}: ${reason}`)
  }
}

/** Parses a timestamp; throws {@link TimestampError} with a specific reason when it is not one. */
export function parseTimestamp(input: string | number): ParsedTimestamp {
  const result = tryParseTimestamp(input)
  if (isTimestampFailure(result)) throw new TimestampError(input, result.error)
  return result
}

/**
 * The hot-path variant: never throws, whatever it is given; returns `{error}` on failure.
 * Non-string, non-number inputs (null, booleans, objects, ...) and NaN/Infinity are failures.
 */
export function tryParseTimestamp(input: unknown): ParsedTimestamp | TimestampFailure {
  if (typeof input === 'string') return parseString(input)
  if (typeof input === 'number') return parseNumber(input)
  return fail(`expected a string or a number, got ${describeType(input)}`)
}

export function isTimestampFailure(result: ParsedTimestamp | TimestampFailure): result is TimestampFailure {
  return (result as TimestampFailure).error !== undefined
}

/**
 * Epoch milliseconds → `YYYY-MM-DDTHH:mm:ss.sssZ` (UTC, always three fraction digits). A
 * fractional millisecond is truncated (floor). Throws {@link TimestampError} outside years 0000-9999.
 */
export function formatIsoMillis(ms: number): string {
  if (typeof ms !== 'number' || !(ms >= MIN_TIMESTAMP_MS && ms < MAX_TIMESTAMP_MS + 1)) {
    throw new TimestampError(ms, Number.isFinite(ms) ? OUT_OF_RANGE : 'not a finite number')
  }
  return isoOfMillis(Math.floor(ms))
}

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0xfeff
}

/** Strips whitespace and one matching pair of quotes, then reads an ISO date-time (`-` after the year) or an epoch number. */
function parseString(s: string): ParsedTimestamp | TimestampFailure {
  let start = 0
  let end = s.length
  while (start < end && isSpace(s.charCodeAt(start))) start++
  while (end > start && isSpace(s.charCodeAt(end - 1))) end--
  if (start === end) return fail('empty input')
  const first = s.charCodeAt(start)
  const last = s.charCodeAt(end - 1)
  if (first === 39 || first === 34) {
    if (end - start < 2 || last !== first) return fail('unbalanced quote')
    start++
    end--
    if (start === end) return fail('empty value inside quotes')
  } else if (last === 39 || last === 34) {
    return fail('unbalanced quote')
  }
  if (end - start >= 10 && s.charCodeAt(start + 4) === 45) return parseIso(s, start, end)
  return parseEpochDigits(s, start, end)
}

function describeType(input: unknown): string {
  if (input === null) return 'null'
  if (Array.isArray(input)) return 'an array'
  return typeof input
}

function describeInput(input: unknown): string {
  if (typeof input === 'string') return JSON.stringify(input.length > 80 ? `${input.slice(0, 77)}...` : input)
  if (typeof input === 'number') return String(input)
  return `(${describeType(input)})`
}
