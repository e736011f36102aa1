import {isUtf8} from 'node:buffer'
import type {DeviceEvent} from './backends/backend.js'
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

export type EventResult =
  | {ok: true; event: DeviceEvent}
  | {ok: false; reason: InvalidReason; detail: string}

function invalid(reason: InvalidReason, detail: string): EventResult {
  return {ok: false, reason, detail}
}

/** Shortens a value for a log line or a dead-letter header. */
export function preview(value: unknown, max = 80): string {
  let text: string
  try {
    text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value)
  } catch {
    text = String(value)
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

  const rawIp = record.device_ip
  if (rawIp === undefined || rawIp === null) return invalid('missing_device_ip', 'no device_ip field')
  if (typeof rawIp !== 'string') return invalid('invalid_device_ip', `device_ip must be a string, got ${typeof rawIp}`)
  const deviceIp = normalizeIp(rawIp)
  if (deviceIp === undefined) return invalid('invalid_device_ip', `device_ip ${preview(rawIp, 60)} is not an IPv4 or IPv6 address`)

  const rawTimestamp = record.timestamp
  if (rawTimestamp === undefined || rawTimestamp === null) return invalid('missing_timestamp', 'no timestamp field')
  const timestamp = tryParseTimestamp(rawTimestamp)
  if ('error' in timestamp) return invalid('invalid_timestamp', `timestamp ${preview(rawTimestamp, 60)}: ${timestamp.error}`)

  const errorCode = record.error_code
  if (errorCode === undefined || errorCode === null) return invalid('missing_error_code', 'no error_code field')
  if (typeof errorCode !== 'number' || !Number.isInteger(errorCode) || errorCode < -128 || errorCode > 127) {
    return invalid('invalid_error_code', `error_code ${preview(errorCode, 40)} is not an integer in -128..127`)
  }

  return {ok: true, event: {timestampMs: timestamp.ms, deviceIp, errorCode}}
}
