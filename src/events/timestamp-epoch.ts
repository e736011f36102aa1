/**
 * Epoch numbers, as digit strings or JS numbers: the unit by magnitude (seconds, milliseconds,
 * microseconds, nanoseconds), the value floored to whole milliseconds.
 */
import {digitAt, fail, OUT_OF_RANGE, success, UNRECOGNISED, type ParsedTimestamp, type TimestampFailure, type TimestampFormat} from './timestamp-formats.js'

/**
 * An epoch number written as `[-]digits[.digits]`, read exactly from its digits (no float error):
 * unit by the magnitude of the integer part, then truncated to whole milliseconds (floor).
 */
export function parseEpochDigits(s: string, start: number, end: number): ParsedTimestamp | TimestampFailure {
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

/** A JS number as an epoch: exact for safe integers, read through its shortest decimal otherwise. */
export function parseNumber(n: number): ParsedTimestamp | TimestampFailure {
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
