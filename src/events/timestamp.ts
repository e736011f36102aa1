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

export const TIMESTAMP_FORMATS = ['iso8601', 'iso8601-no-zone', 'epoch-seconds', 'epoch-millis', 'epoch-micros', 'epoch-nanos'] as const

export type TimestampFormat = (typeof TIMESTAMP_FORMATS)[number]

export interface ParsedTimestamp {
  /** Epoch milliseconds, UTC (an integer). */
  readonly ms: number
  /** `YYYY-MM-DDTHH:mm:ss.sssZ`. */
  readonly iso: string
  /** Which accepted shape the input had. */
  readonly format: TimestampFormat
}

export interface TimestampFailure {
  /** Why the input was rejected. */
  readonly error: string
}

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

/** 0000-01-01T00:00:00.000Z */
export const MIN_TIMESTAMP_MS = -62_167_219_200_000
/** 9999-12-31T23:59:59.999Z */
export const MAX_TIMESTAMP_MS = 253_402_300_799_999

const MS_PER_DAY = 86_400_000
const UNRECOGNISED = 'not an ISO 8601 date-time (such as 2021-12-03T16:15:30.235Z) or an epoch number'
const OUT_OF_RANGE = 'outside the supported years 0000-9999'

const PAD2: string[] = Array.from({length: 100}, (_, i) => String(i).padStart(2, '0'))

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

/** formatIsoMillis for an integer already known to be in range (the parser's results). */
function isoOfMillis(t: number): string {
  const days = Math.floor(t / MS_PER_DAY)
  let rest = t - days * MS_PER_DAY
  // Civil date from days (proleptic Gregorian, H. Hinnant's algorithm), counted from 0000-03-01
  // minus one 400-year era so every value stays a positive int32 and `| 0` is floor division.
  const z = days + 719_468 + 146_097
  const era = (z / 146_097) | 0
  const doe = z - era * 146_097
  const yoe = ((doe - ((doe / 1460) | 0) + ((doe / 36_524) | 0) - ((doe / 146_096) | 0)) / 365) | 0
  const doy = doe - (365 * yoe + ((yoe / 4) | 0) - ((yoe / 100) | 0))
  const mp = ((5 * doy + 2) / 153) | 0
  const day = doy - (((153 * mp + 2) / 5) | 0) + 1
  const month = mp < 10 ? mp + 3 : mp - 9
  const year = yoe + (era - 1) * 400 + (month <= 2 ? 1 : 0)
  const hour = (rest / 3_600_000) | 0
  rest -= hour * 3_600_000
  const minute = (rest / 60_000) | 0
  rest -= minute * 60_000
  const second = (rest / 1000) | 0
  const milli = rest - second * 1000
  const century = (year / 100) | 0
  const yearOfCentury = year - century * 100
  // One flat string from char codes: about twice as fast as concatenating padded pieces.
  return String.fromCharCode(
    48 + ((century / 10) | 0),
    48 + (century % 10),
    48 + ((yearOfCentury / 10) | 0),
    48 + (yearOfCentury % 10),
    45,
    48 + ((month / 10) | 0),
    48 + (month % 10),
    45,
    48 + ((day / 10) | 0),
    48 + (day % 10),
    84,
    48 + ((hour / 10) | 0),
    48 + (hour % 10),
    58,
    48 + ((minute / 10) | 0),
    48 + (minute % 10),
    58,
    48 + ((second / 10) | 0),
    48 + (second % 10),
    46,
    48 + ((milli / 100) | 0),
    48 + (((milli / 10) | 0) % 10),
    48 + (milli % 10),
    90,
  )
}

function fail(error: string): TimestampFailure {
  return {error}
}

function success(ms: number, format: TimestampFormat): ParsedTimestamp | TimestampFailure {
  if (!(ms >= MIN_TIMESTAMP_MS && ms <= MAX_TIMESTAMP_MS)) {
    return fail(format.startsWith('epoch') ? `${OUT_OF_RANGE} (read as ${EPOCH_UNIT[format]})` : OUT_OF_RANGE)
  }
  return new Timestamp(ms, format)
}

/** A parsed timestamp; its ISO text is made when asked for (the consumer needs only `ms`). */
class Timestamp implements ParsedTimestamp {
  constructor(
    readonly ms: number,
    readonly format: TimestampFormat,
  ) {}

  get iso(): string {
    return isoOfMillis(this.ms)
  }

  toJSON(): {ms: number; iso: string; format: TimestampFormat} {
    return {ms: this.ms, iso: this.iso, format: this.format}
  }
}

const EPOCH_UNIT: Partial<Record<TimestampFormat, string>> = {
  'epoch-seconds': 'epoch seconds',
  'epoch-millis': 'epoch milliseconds',
  'epoch-micros': 'epoch microseconds',
  'epoch-nanos': 'epoch nanoseconds',
}

function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0xfeff
}

/** 0-9 for an ASCII digit at `i`, otherwise -1 (callers check bounds first). */
function digitAt(s: string, i: number): number {
  const d = s.charCodeAt(i) - 48
  return d >= 0 && d <= 9 ? d : -1
}

/** Two ASCII digits at `i` as a number, or -1. */
function twoDigits(s: string, i: number): number {
  const a = digitAt(s, i)
  const b = digitAt(s, i + 1)
  return a < 0 || b < 0 ? -1 : a * 10 + b
}

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

function parseIso(s: string, start: number, end: number): ParsedTimestamp | TimestampFailure {
  const y1 = twoDigits(s, start)
  const y2 = twoDigits(s, start + 2)
  const month = twoDigits(s, start + 5)
  const day = twoDigits(s, start + 8)
  if (y1 < 0 || y2 < 0 || month < 0 || day < 0 || s.charCodeAt(start + 7) !== 45) return fail(UNRECOGNISED)
  const year = y1 * 100 + y2
  const length = end - start
  if (length === 10) return fail('date without a time of day: expected YYYY-MM-DDTHH:mm:ss')
  const separator = s.charCodeAt(start + 10)
  if (length < 16 || (separator !== 84 && separator !== 116 && separator !== 32)) return fail(UNRECOGNISED)
  const hour = twoDigits(s, start + 11)
  const minute = twoDigits(s, start + 14)
  if (hour < 0 || minute < 0 || s.charCodeAt(start + 13) !== 58) return fail(UNRECOGNISED)

  let p = start + 16
  let second = 0
  let milli = 0
  if (p < end && s.charCodeAt(p) === 58) {
    if (p + 3 > end || (second = twoDigits(s, p + 1)) < 0) return fail(UNRECOGNISED)
    p += 3
    if (p < end && s.charCodeAt(p) === 46) {
      const fractionStart = ++p
      let d: number
      while (p < end && (d = digitAt(s, p)) >= 0) {
        if (p - fractionStart < 3) milli = milli * 10 + d
        p++
      }
      const digits = p - fractionStart
      if (digits === 0) return fail(UNRECOGNISED)
      if (digits > 9) return fail('fraction of a second longer than 9 digits')
      if (digits === 1) milli *= 100
      else if (digits === 2) milli *= 10
    }
  }

  let offsetMinutes = 0
  let zoned = false
  if (p < end) {
    const zone = s.charCodeAt(p)
    if (zone === 90 || zone === 122) {
      if (p + 1 !== end) return fail(UNRECOGNISED)
    } else if (zone === 43 || zone === 45) {
      const rest = end - p
      const zoneHour = twoDigits(s, p + 1)
      let zoneMinute: number
      if (rest === 6 && s.charCodeAt(p + 3) === 58) zoneMinute = twoDigits(s, p + 4)
      else if (rest === 5) zoneMinute = twoDigits(s, p + 3)
      else return fail(UNRECOGNISED)
      if (zoneHour < 0 || zoneMinute < 0) return fail(UNRECOGNISED)
      if (zoneHour > 23) return fail(`zone offset hour ${PAD2[zoneHour]} is out of range (expected 00-23)`)
      if (zoneMinute > 59) return fail(`zone offset minute ${PAD2[zoneMinute]} is out of range (expected 00-59)`)
      offsetMinutes = zoneHour * 60 + zoneMinute
      if (zone === 45) offsetMinutes = -offsetMinutes
    } else {
      return fail(UNRECOGNISED)
    }
    zoned = true
  }

  if (month < 1 || month > 12) return fail(`month ${PAD2[month]} does not exist (expected 01-12)`)
  const monthDays = daysInMonth(year, month)
  if (day < 1 || day > monthDays) {
    return fail(`day ${PAD2[day]} does not exist in ${PAD2[y1]}${PAD2[y2]}-${PAD2[month]} (expected 01-${monthDays})`)
  }
  if (hour > 23) return fail(`hour ${PAD2[hour]} is out of range (expected 00-23)`)
  if (minute > 59) return fail(`minute ${PAD2[minute]} is out of range (expected 00-59)`)
  if (second > 59) {
    return fail(second === 60 ? 'second 60 (a leap second) is not accepted (expected 00-59)' : `second ${PAD2[second]} is out of range (expected 00-59)`)
  }

  const ms = daysFromCivil(year, month, day) * MS_PER_DAY + hour * 3_600_000 + (minute - offsetMinutes) * 60_000 + second * 1000 + milli
  return success(ms, zoned ? 'iso8601' : 'iso8601-no-zone')
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28
  return 30 + ((month + (month >> 3)) & 1)
}

/**
 * Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). Used instead of
 * `Date.UTC`, which maps years 0-99 to 1900-1999; same results for every valid date, and faster.
 */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yoe = y - era * 400
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy
  return era * 146_097 + doe - 719_468
}

/**
 * An epoch number written as `[-]digits[.digits]`, read exactly from its digits (no float error):
 * unit by the magnitude of the integer part, then truncated to whole milliseconds (floor).
 */
function parseEpochDigits(s: string, start: number, end: number): ParsedTimestamp | TimestampFailure {
  let p = start
  const negative = s.charCodeAt(p) === 45
  if (negative) p++
  const intStart = p
  while (p < end && digitAt(s, p) >= 0) p++
  const intEnd = p
  if (intEnd === intStart) return fail(UNRECOGNISED)
  let fractionStart = p
  let fractionEnd = p
  if (p < end && s.charCodeAt(p) === 46) {
    fractionStart = ++p
    while (p < end && digitAt(s, p) >= 0) p++
    fractionEnd = p
    if (fractionEnd === fractionStart) return fail(UNRECOGNISED)
  }
  if (p !== end) return fail(UNRECOGNISED)

  let significant = intStart
  while (significant < intEnd && s.charCodeAt(significant) === 48) significant++
  const intDigits = intEnd - significant

  let format: TimestampFormat
  let msDigitsEnd: number
  if (intDigits <= 11) {
    format = 'epoch-seconds'
    msDigitsEnd = intEnd
  } else if (intDigits <= 14) {
    format = 'epoch-millis'
    msDigitsEnd = intEnd
  } else if (intDigits <= 17) {
    format = 'epoch-micros'
    msDigitsEnd = intEnd - 3
  } else {
    format = 'epoch-nanos'
    // More than 15 whole-millisecond digits is far beyond year 9999 (and beyond exact doubles).
    if (intDigits > 21) return fail(`${OUT_OF_RANGE} (read as epoch nanoseconds)`)
    msDigitsEnd = intEnd - 6
  }

  let ms = 0
  for (let i = significant; i < msDigitsEnd; i++) ms = ms * 10 + (s.charCodeAt(i) - 48)
  let truncated = false
  let fractionFrom = fractionStart
  if (format === 'epoch-seconds') {
    for (let i = 0; i < 3; i++) {
      const at = fractionStart + i
      ms = ms * 10 + (at < fractionEnd ? s.charCodeAt(at) - 48 : 0)
    }
    fractionFrom = fractionStart + 3
  } else {
    for (let i = msDigitsEnd; i < intEnd && !truncated; i++) truncated = s.charCodeAt(i) !== 48
  }
  for (let i = fractionFrom; i < fractionEnd && !truncated; i++) truncated = s.charCodeAt(i) !== 48

  if (negative) ms = 0 - ms - (truncated ? 1 : 0)
  return success(ms, format)
}

function parseNumber(n: number): ParsedTimestamp | TimestampFailure {
  if (Number.isSafeInteger(n)) {
    const abs = n < 0 ? -n : n
    if (abs < 1e11) return success(n * 1000 + 0, 'epoch-seconds')
    if (abs < 1e14) return success(n, 'epoch-millis')
    if (abs < 1e17) return success(floorDivide(n, 1000), 'epoch-micros')
    return success(floorDivide(n, 1_000_000), 'epoch-nanos')
  }
  if (!Number.isFinite(n)) return fail(`not a finite number (${n})`)
  const abs = n < 0 ? -n : n
  if (abs >= 1e21) return fail(`${OUT_OF_RANGE} (read as epoch nanoseconds)`)
  // String() would switch to exponent notation here; these are fractions of a millisecond.
  if (abs < 1e-6) return success(n < 0 ? -1 : 0, 'epoch-seconds')
  if (abs < 1e11) {
    // Fast path for seconds with at most millisecond digits (1726668850.124): below 1e11 doubles
    // are far closer together than 0.001, so when r/1000 gives back n, n was written as r/1000.
    const rounded = Math.round(n * 1000)
    if (rounded / 1000 === n) return success(rounded, 'epoch-seconds')
  }
  // The shortest decimal that round-trips is what was written (1726668850.124, not ...0.12399...).
  const text = String(n)
  return parseEpochDigits(text, 0, text.length)
}

/** floor(n / divisor) for safe integers, exact (no float rounding of the quotient). */
function floorDivide(n: number, divisor: number): number {
  const remainder = n % divisor
  const quotient = (n - remainder) / divisor
  return remainder < 0 ? quotient - 1 : quotient + 0
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
