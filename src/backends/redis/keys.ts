import {randomBytes} from 'node:crypto'
import {formatIsoMillis} from '../../events/timestamp.js'

/**
 * The prefix of every bucket key: `{key}` when the key has no hash tag of its own, so that the
 * all-time key and every bucket key land in one Redis Cluster hash slot (multi-key PFCOUNT and
 * PFMERGE need that); the key itself when it already has a tag (`{…}`), which the suffixes keep.
 */
export function bucketKeyPrefix(key: string): string {
  const open = key.indexOf('{')
  const close = open === -1 ? -1 : key.indexOf('}', open + 1)
  return close > open + 1 ? key : `{${key}}`
}

/** `2024091814` for the UTC hour starting at `hourStartMs`. */
export function hourLabel(hourStartMs: number): string {
  const iso = formatIsoMillis(hourStartMs)
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}`
}

/** The key names the backend uses for one base key. */
export class RedisKeys {
  readonly prefix: string
  constructor(readonly allTime: string) {
    this.prefix = bucketKeyPrefix(allTime)
  }

  /** Devices with an event in that UTC hour. */
  hour(hourStartMs: number): string {
    return `${this.prefix}:h:${hourLabel(hourStartMs)}`
  }

  /** Devices that ever reported the error code. */
  errorCode(code: number): string {
    return `${this.prefix}:e:${code}`
  }

  /** Devices that reported the error code in that UTC hour. */
  hourErrorCode(hourStartMs: number, code: number): string {
    return `${this.prefix}:he:${hourLabel(hourStartMs)}:${code}`
  }

  /** When the backend last wrote (epoch ms, the writer's clock), for the dashboard's freshness. */
  lastWrite(): string {
    return `${this.prefix}:last-write`
  }

  temporary(): string {
    return `${this.prefix}:tmp:${randomBytes(8).toString('hex')}`
  }
}
