/**
 * The timestamp formats the parser accepts, what it returns, and what its ISO and epoch readers
 * share: the range check, the failure messages and the digit readers.
 */
import {isoOfMillis} from './civil-time.js'

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

/** 0000-01-01T00:00:00.000Z */
export const MIN_TIMESTAMP_MS = -62_167_219_200_000
/** 9999-12-31T23:59:59.999Z */
export const MAX_TIMESTAMP_MS = 253_402_300_799_999

export const UNRECOGNISED = 'not an ISO 8601 date-time (such as 2021-12-03T16:15:30.235Z) or an epoch number'
export const OUT_OF_RANGE = 'outside the supported years 0000-9999'

export function fail(error: string): TimestampFailure {
  return {error}
}

export function success(ms: number, format: TimestampFormat): ParsedTimestamp | TimestampFailure {
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

/** 0-9 for an ASCII digit at `i`, otherwise -1 (callers check bounds first). */
export function digitAt(s: string, i: number): number {
  const d = s.charCodeAt(i) - 48
  return d >= 0 && d <= 9 ? d : -1
}

/** Two ASCII digits at `i` as a number, or -1. */
export function twoDigits(s: string, i: number): number {
  const a = digitAt(s, i)
  const b = digitAt(s, i + 1)
  return a < 0 || b < 0 ? -1 : a * 10 + b
}
