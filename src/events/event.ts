import {isUtf8} from 'node:buffer'
import type {DeviceEvent} from '../backends/backend.js'
import {normalizeIp} from './ip.js'
import {tryParseTimestamp} from './timestamp.js'

/** Events are ~100 bytes; anything far larger is not an event and is refused before JSON parsing. */
export const MAX_EVENT_BYTES = 64 * 1024

export const INVALID_REASONS = [
  'empty_message',
  'message_too_large',
  'invalid_utf8',
  'invalid_json',
  'not_an_object',
  'missing_device_ip',
  'invalid_device_ip',
  'missing_timestamp',
  'invalid_timestamp',
  'missing_error_code',
  'invalid_error_code',
] as const
export type InvalidReason = (typeof INVALID_REASONS)[number]

export type EventResult = {ok: true; event: DeviceEvent} | {ok: false; reason: InvalidReason; detail: string}

function invalid(reason: InvalidReason, detail: string): EventResult {
  return {ok: false, reason, detail}
}

/** Shortens a value for a log line or a dead-letter header. */
export function preview(value: unknown, max = 80): string {
  let text: string
  try {
    text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value))
  } catch {
    // Too deep to stringify (String() of a nested array would recurse just the same).
    text = Array.isArray(value) ? '[…]' : typeof value === 'object' ? '{…}' : typeof value
  }
  return text.length > max ? `${text.slice(0, max)}…` : text
}

/**
 * Validates one Kafka message value and returns the normalised event, or the specific reason it
 * is not one. Never throws: every input, however hostile, gets a result.
 */
export function parseEvent(value: Buffer | string | null | undefined): EventResult {
  if (value === null || value === undefined || value.length === 0) return invalid('empty_message', 'message has no value')
  let text: string
  if (typeof value === 'string') {
    text = value
  } else {
    if (value.length > MAX_EVENT_BYTES) return invalid('message_too_large', `message is ${value.length} bytes; the limit is ${MAX_EVENT_BYTES}`)
    const flat = parseFlatAsciiEvent(value)
    if (flat !== undefined) return flat
    if (!isUtf8(value)) return invalid('invalid_utf8', 'message value is not valid UTF-8')
    text = value.toString('utf8')
  }
  if (text.length > MAX_EVENT_BYTES) return invalid('message_too_large', `message is ${text.length} characters; the limit is ${MAX_EVENT_BYTES}`)
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    return invalid('invalid_json', `not JSON: ${(error as Error).message}`)
  }
  return validateEvent(parsed)
}

/** Validates an already-decoded JSON value as an event. */
export function validateEvent(parsed: unknown): EventResult {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return invalid('not_an_object', `expected a JSON object, got ${parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : typeof parsed}`)
  }
  const record = parsed as Record<string, unknown>
  return validateFields(record.device_ip, record.timestamp, record.error_code)
}

/** Validates the three event fields of an object (undefined: the field is absent). */
function validateFields(rawIp: unknown, rawTimestamp: unknown, errorCode: unknown): EventResult {
  if (rawIp === undefined || rawIp === null) return invalid('missing_device_ip', 'no device_ip field')
  if (typeof rawIp !== 'string') return invalid('invalid_device_ip', `device_ip must be a string, got ${typeof rawIp}`)
  const deviceIp = normalizeIp(rawIp)
  if (deviceIp === undefined) return invalid('invalid_device_ip', `device_ip ${preview(rawIp, 60)} is not an IPv4 or IPv6 address`)

  if (rawTimestamp === undefined || rawTimestamp === null) return invalid('missing_timestamp', 'no timestamp field')
  const timestamp = tryParseTimestamp(rawTimestamp)
  if ('error' in timestamp) return invalid('invalid_timestamp', `timestamp ${preview(rawTimestamp, 60)}: ${timestamp.error}`)

  if (errorCode === undefined || errorCode === null) return invalid('missing_error_code', 'no error_code field')
  if (typeof errorCode !== 'number' || !Number.isInteger(errorCode) || errorCode < -128 || errorCode > 127) {
    return invalid('invalid_error_code', `error_code ${preview(errorCode, 40)} is not an integer in -128..127`)
  }

  // `source` is declared here so that setting it later keeps the object's shape (hidden class).
  return {ok: true, event: {timestampMs: timestamp.ms, deviceIp, errorCode, source: undefined}}
}

// Byte values the flat-object reader looks for.
const QUOTE = 0x22
const BACKSLASH = 0x5c
const COMMA = 0x2c
const COLON = 0x3a
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const MINUS = 0x2d
const PLUS = 0x2b
const DOT = 0x2e
const ZERO = 0x30
const NINE = 0x39

const FIELD_OTHER = 0
const FIELD_TIMESTAMP = 1
const FIELD_DEVICE_IP = 2
const FIELD_ERROR_CODE = 3
const FIELD_NAMES: ReadonlyArray<readonly [number, Buffer]> = [
  [FIELD_TIMESTAMP, Buffer.from('timestamp')],
  [FIELD_DEVICE_IP, Buffer.from('device_ip')],
  [FIELD_ERROR_CODE, Buffer.from('error_code')],
]

/** Integers up to this many digits are read digit by digit (exact below 2^53). */
const MAX_EXACT_DIGITS = 15

/**
 * The fast path for the shape every device sends: one flat JSON object of plain ASCII.
 *
 * Reads the three event fields straight from the bytes, without decoding the whole message or
 * building an object, and validates them like {@link validateEvent}. Returns undefined for anything
 * else — a byte outside printable ASCII, an escape, a nested object or array, something that is
 * not an object or not well-formed JSON — which then takes the general path through JSON.parse.
 * For every message it accepts, the field values are exactly those JSON.parse gives (the last of
 * duplicate keys wins, as there), so both paths give the same result.
 */
function parseFlatAsciiEvent(bytes: Buffer): EventResult | undefined {
  const end = bytes.length
  let i = skipSpace(bytes, 0)
  if (i >= end || bytes[i] !== OPEN_BRACE) return undefined
  let rawIp: unknown
  let rawTimestamp: unknown
  let errorCode: unknown
  i = skipSpace(bytes, i + 1)
  if (i < end && bytes[i] === CLOSE_BRACE) {
    i++
  } else {
    for (;;) {
      if (i >= end || bytes[i] !== QUOTE) return undefined
      const keyEnd = stringEnd(bytes, i + 1)
      if (keyEnd < 0) return undefined
      const field = fieldOf(bytes, i + 1, keyEnd)
      i = skipSpace(bytes, keyEnd + 1)
      if (i >= end || bytes[i] !== COLON) return undefined
      i = skipSpace(bytes, i + 1)
      if (i >= end) return undefined
      let value: unknown
      const first = bytes[i]
      if (first === QUOTE) {
        const valueEnd = stringEnd(bytes, i + 1)
        if (valueEnd < 0) return undefined
        if (field !== FIELD_OTHER) value = bytes.toString('latin1', i + 1, valueEnd)
        i = valueEnd + 1
      } else if (first === MINUS || (first >= ZERO && first <= NINE)) {
        const numberEnd = jsonNumberEnd(bytes, i)
        if (numberEnd < 0) return undefined
        if (field !== FIELD_OTHER) value = jsonNumber(bytes, i, numberEnd)
        i = numberEnd
      } else if (matches(bytes, i, 'true')) {
        value = true
        i += 4
      } else if (matches(bytes, i, 'false')) {
        value = false
        i += 5
      } else if (matches(bytes, i, 'null')) {
        value = null
        i += 4
      } else {
        return undefined
      }
      if (field === FIELD_TIMESTAMP) rawTimestamp = value
      else if (field === FIELD_DEVICE_IP) rawIp = value
      else if (field === FIELD_ERROR_CODE) errorCode = value
      i = skipSpace(bytes, i)
      if (i >= end) return undefined
      if (bytes[i] === CLOSE_BRACE) {
        i++
        break
      }
      if (bytes[i] !== COMMA) return undefined
      i = skipSpace(bytes, i + 1)
    }
  }
  if (skipSpace(bytes, i) !== end) return undefined
  return validateFields(rawIp, rawTimestamp, errorCode)
}

/** JSON whitespace: space, tab, line feed, carriage return. */
function skipSpace(bytes: Buffer, from: number): number {
  let i = from
  while (i < bytes.length) {
    const byte = bytes[i]
    if (byte !== 0x20 && byte !== 0x0a && byte !== 0x0d && byte !== 0x09) break
    i++
  }
  return i
}

/** Index of the closing quote of a string of printable ASCII without escapes, or -1. */
function stringEnd(bytes: Buffer, from: number): number {
  for (let i = from; i < bytes.length; i++) {
    const byte = bytes[i]
    if (byte === QUOTE) return i
    if (byte < 0x20 || byte >= 0x7f || byte === BACKSLASH) return -1
  }
  return -1
}

function fieldOf(bytes: Buffer, start: number, end: number): number {
  for (const [field, name] of FIELD_NAMES) {
    if (name.length !== end - start) continue
    let same = true
    for (let k = 0; k < name.length && same; k++) same = bytes[start + k] === name[k]
    if (same) return field
  }
  return FIELD_OTHER
}

function matches(bytes: Buffer, at: number, word: string): boolean {
  if (at + word.length > bytes.length) return false
  for (let k = 0; k < word.length; k++) if (bytes[at + k] !== word.charCodeAt(k)) return false
  return true
}

function isDigit(byte: number): boolean {
  return byte >= ZERO && byte <= NINE
}

/** End of a JSON number starting at `start` (`-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`), or -1. */
function jsonNumberEnd(bytes: Buffer, start: number): number {
  const end = bytes.length
  let i = start
  if (bytes[i] === MINUS) i++
  if (i >= end || !isDigit(bytes[i])) return -1
  if (bytes[i] === ZERO) i++
  else while (i < end && isDigit(bytes[i])) i++
  if (i < end && bytes[i] === DOT) {
    i++
    if (i >= end || !isDigit(bytes[i])) return -1
    while (i < end && isDigit(bytes[i])) i++
  }
  if (i < end && (bytes[i] === 0x65 || bytes[i] === 0x45)) {
    i++
    if (i < end && (bytes[i] === PLUS || bytes[i] === MINUS)) i++
    if (i >= end || !isDigit(bytes[i])) return -1
    while (i < end && isDigit(bytes[i])) i++
  }
  return i
}

/** The value of a well-formed JSON number, as JSON.parse reads it. */
function jsonNumber(bytes: Buffer, start: number, end: number): number {
  const negative = bytes[start] === MINUS
  const digitsStart = negative ? start + 1 : start
  if (end - digitsStart <= MAX_EXACT_DIGITS) {
    let value = 0
    for (let i = digitsStart; i < end; i++) {
      const byte = bytes[i]
      if (!isDigit(byte)) return Number(bytes.toString('latin1', start, end))
      value = value * 10 + (byte - ZERO)
    }
    return negative ? -value : value
  }
  return Number(bytes.toString('latin1', start, end))
}
