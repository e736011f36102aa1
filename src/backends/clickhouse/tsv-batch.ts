import {randomInt} from 'node:crypto'
import type {DeviceEvent} from '../backend.js'
import type {WriteBatch} from '../batch-writer.js'
import {formatDateTime64, type TimestampLayout} from './schema.js'

const TSV_SPECIAL = /[\\\t\n\r]/g
const TSV_ESCAPES: Record<string, string> = {'\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r'}

/** A string as a TabSeparated field: backslash, tab, line feed and carriage return escaped. */
export function escapeTsv(value: string): string {
  return value.replace(TSV_SPECIAL, (special) => TSV_ESCAPES[special])
}

/**
 * Coordinates for events without a Kafka source: topic '', a negative partition drawn once per
 * writer (never a Kafka partition) and a sequence, so that such events never share a key.
 */
export class LocalSequence {
  readonly partition = -1 - randomInt(2 ** 31 - 1)
  private next = 0

  /** The coordinate fields of the next event: tab, empty topic, tab, partition, tab, sequence. */
  take(): string {
    return `\t\t${this.partition}\t${this.next++}`
  }
}

/** What a row holds besides time, device and error code: coordinates, or nothing on a table of the unkeyed layout. */
export type RowKey = {keyed: true; local: LocalSequence} | {keyed: false}

/** One event as a TabSeparated line, in the order of the insert's columns. */
export function toTsvRow(event: DeviceEvent, layout: TimestampLayout, key: RowKey = {keyed: false}): string {
  const batch = new TsvBatch(() => ({layout, key}))
  batch.append(event)
  return batch.bytes.toString('utf8')
}

/** The table's shape, known once the backend has connected. */
export interface TableShape {
  layout: TimestampLayout
  key: RowKey
}

const TAB = 0x09
const NEWLINE = 0x0a
const MINUS = 0x2d
const BACKSLASH = 0x5c
/** Room for a row besides its topic, IP and offset: time, error code, partition, separators. */
const ROW_BYTES = 160
const INITIAL_BYTES = 64 * 1024

/**
 * A batch of events as TabSeparated bytes: the cheapest form to build, send and parse. Each event is
 * written into the buffer as it is appended, so its object dies young instead of living in the
 * batch until the insert, and no text is built or encoded per row.
 */
export class TsvBatch implements WriteBatch<DeviceEvent> {
  size = 0
  private buffer = Buffer.allocUnsafe(INITIAL_BYTES)
  private length = 0
  private topic?: string
  private topicBytes = Buffer.alloc(0)

  /** The shape is read when events arrive: `add()` connects (and learns it) first. */
  constructor(private readonly shape: () => TableShape) {}

  /** The rows so far (a view of the batch's buffer). */
  get bytes(): Buffer {
    return this.buffer.subarray(0, this.length)
  }

  append(event: DeviceEvent): void {
    const {layout, key} = this.shape()
    const source = key.keyed ? event.source : undefined
    if (source && source.topic !== this.topic) {
      this.topic = source.topic
      this.topicBytes = Buffer.from(escapeTsv(source.topic))
    }
    this.reserve(ROW_BYTES + this.topicBytes.length)
    if (layout === 'datetime64') this.ascii(formatDateTime64(event.timestampMs))
    else this.integer(event.timestampMs)
    this.buffer[this.length++] = TAB
    this.field(event.deviceIp)
    this.buffer[this.length++] = TAB
    this.integer(event.errorCode)
    if (source) {
      this.buffer[this.length++] = TAB
      this.length += this.topicBytes.copy(this.buffer, this.length)
      this.buffer[this.length++] = TAB
      this.integer(source.partition)
      this.buffer[this.length++] = TAB
      this.field(source.offset)
    } else if (key.keyed) {
      this.ascii(key.local.take())
    }
    this.buffer[this.length++] = NEWLINE
    this.size++
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + bytes))
    this.buffer.copy(grown, 0, 0, this.length)
    this.buffer = grown
  }

  /** A string of printable ASCII characters without a backslash (callers pass only such). */
  private ascii(text: string): void {
    const {buffer} = this
    let at = this.length
    for (let i = 0; i < text.length; i++) buffer[at++] = text.charCodeAt(i)
    this.length = at
  }

  /**
   * Any string, escaped for TabSeparated and UTF-8 encoded. A device IP from the consumer is plain
   * ASCII and is copied byte by byte; anything else takes the general path.
   */
  private field(text: string): void {
    this.reserve(text.length)
    const {buffer} = this
    const start = this.length
    let at = start
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i)
      if (code < 0x20 || code >= 0x7f || code === BACKSLASH) {
        const escaped = escapeTsv(text)
        this.length = start
        this.reserve(Buffer.byteLength(escaped))
        this.length += this.buffer.write(escaped, start, 'utf8')
        return
      }
      buffer[at++] = code
    }
    this.length = at
  }

  /** An integer (|value| < 2^53) in decimal. */
  private integer(value: number): void {
    const {buffer} = this
    let rest = value
    if (rest < 0) {
      buffer[this.length++] = MINUS
      rest = -rest
    }
    let digits = 1
    for (let power = 10; power <= rest; power *= 10) digits++
    let at = this.length + digits
    this.length = at
    do {
      const next = Math.floor(rest / 10)
      buffer[--at] = 0x30 + (rest - next * 10)
      rest = next
    } while (rest > 0)
  }
}
