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
  const timestamp = layout === 'datetime64' ? formatDateTime64(event.timestampMs) : event.timestampMs
  // A normalised IP holds only hex digits, dots and colons: nothing to escape.
  const row = `${timestamp}\t${event.deviceIp}\t${event.errorCode}`
  if (!key.keyed) return `${row}\n`
  const {source} = event
  return source ? `${row}\t${escapeTsv(source.topic)}\t${source.partition}\t${source.offset}\n` : `${row}${key.local.take()}\n`
}

/** The table's shape, known once the backend has connected. */
export interface TableShape {
  layout: TimestampLayout
  key: RowKey
}

/** A batch of events as TabSeparated text: the cheapest form to build, send and parse. */
export class TsvBatch implements WriteBatch<DeviceEvent> {
  size = 0
  text = ''
  /** The shape is read when events arrive: `add()` connects (and learns it) first. */
  constructor(private readonly shape: () => TableShape) {}

  append(event: DeviceEvent): void {
    const {layout, key} = this.shape()
    this.text += toTsvRow(event, layout, key)
    this.size++
  }
}
