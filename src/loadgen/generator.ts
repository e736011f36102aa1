/** Simulated devices for `ipc produce`: deterministic for a seed, timestamps in every shape devices send. */
import {formatIsoMillis} from '../events/timestamp.js'

export const MAX_DEVICES = 1 << 24

/** mulberry32: a small, fast, seedable PRNG (not for security). Returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

export const TIMESTAMP_SHAPES = [
  'iso-z-millis', // "2021-12-03T16:15:30.235Z"
  'iso-millis', // "2021-12-03T16:15:30.235" (no zone: UTC)
  'iso-seconds', // "2021-12-03T16:15:30"
  'iso-offset', // "2021-12-03T18:15:30.235+02:00"
  'space-seconds', // "2021-12-03 16:15:30"
  'epoch-seconds-string', // "1726667942"
  'epoch-millis-string', // "1726668850124"
  'epoch-millis-quoted', // "'1726668850124'" (quotes inside the JSON string, as some devices send)
  'epoch-millis-number', // 1726668850124
  'epoch-seconds-number', // 1726667942
] as const
export type TimestampShape = (typeof TIMESTAMP_SHAPES)[number]

const OFFSET_MS = 7_200_000

/** Renders an instant in one of the device shapes, as the JSON text of the `timestamp` field. */
export function timestampJson(ms: number, shape: TimestampShape): string {
  switch (shape) {
    case 'iso-z-millis':
      return `"${formatIsoMillis(ms)}"`
    case 'iso-millis':
      return `"${formatIsoMillis(ms).slice(0, 23)}"`
    case 'iso-seconds':
      return `"${formatIsoMillis(ms).slice(0, 19)}"`
    case 'iso-offset':
      return `"${formatIsoMillis(ms + OFFSET_MS).slice(0, 23)}+02:00"`
    case 'space-seconds': {
      const iso = formatIsoMillis(ms)
      return `"${iso.slice(0, 10)} ${iso.slice(11, 19)}"`
    }
    case 'epoch-seconds-string':
      return `"${Math.floor(ms / 1000)}"`
    case 'epoch-millis-string':
      return `"${ms}"`
    case 'epoch-millis-quoted':
      return `"'${ms}'"`
    case 'epoch-millis-number':
      return String(ms)
    case 'epoch-seconds-number':
      return String(Math.floor(ms / 1000))
  }
}

export interface GeneratorOptions {
  numDevices: number
  seed: number
  /** Event times are drawn from the hour before this instant. Default: now. */
  endTimeMs?: number
}

export interface GeneratedEvent {
  key: string
  value: string
}

export class GeneratorError extends Error {
  override name = 'GeneratorError'
}

/**
 * Picks a device uniformly at random for each event. Device i has a fixed IPv4 address in
 * 10.0.0.0/8 (an odd multiplier modulo 2^24 is a bijection, so distinct devices never share an IP).
 * Tracks exactly which devices were emitted, so a run can be checked against `ipc count`.
 */
export class EventGenerator {
  private readonly random: () => number
  private readonly emitted: Uint8Array
  private distinct = 0
  private readonly endTimeMs: number

  constructor(private readonly options: GeneratorOptions) {
    if (!Number.isInteger(options.numDevices) || options.numDevices < 1 || options.numDevices > MAX_DEVICES) {
      throw new GeneratorError(`number of devices must be an integer from 1 to ${MAX_DEVICES}`)
    }
    this.random = seededRandom(options.seed)
    this.emitted = new Uint8Array(options.numDevices)
    this.endTimeMs = options.endTimeMs ?? Date.now()
  }

  /** Distinct device IPs emitted so far. */
  get distinctDevices(): number {
    return this.distinct
  }

  deviceIp(index: number): string {
    const value = (Math.imul(index, 0x9e3779b1) + this.options.seed) & (MAX_DEVICES - 1)
    return `10.${value >>> 16}.${(value >>> 8) & 255}.${value & 255}`
  }

  next(): GeneratedEvent {
    const device = Math.floor(this.random() * this.options.numDevices)
    if (this.emitted[device] === 0) {
      this.emitted[device] = 1
      this.distinct++
    }
    const ip = this.deviceIp(device)
    const ms = this.endTimeMs - Math.floor(this.random() * 3_600_000)
    const shape = TIMESTAMP_SHAPES[Math.floor(this.random() * TIMESTAMP_SHAPES.length)]
    const errorCode = Math.floor(this.random() * 10)
    return {key: ip, value: `{"timestamp":${timestampJson(ms, shape)},"device_ip":"${ip}","error_code":${errorCode}}`}
  }
}
