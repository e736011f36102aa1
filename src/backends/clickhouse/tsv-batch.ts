import type {DeviceEvent} from '../backend.js'
import type {WriteBatch} from '../batch-writer.js'
import {formatDateTime64, type TimestampLayout} from './schema.js'

const TSV_SPECIAL = /[\\\t\n\r]/g
const TSV_ESCAPES: Record<string, string> = {'\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r'}

/** A string as a TabSeparated field: backslash, tab, line feed and carriage return escaped. */
export function escapeTsv(value: string): string {
  return value.replace(TSV_SPECIAL, (special) => TSV_ESCAPES[special])
}

/** One event as a TabSeparated line, in the order of the insert's columns. */
export function toTsvRow(event: DeviceEvent, layout: TimestampLayout): string {
  const timestamp = layout === 'datetime64' ? formatDateTime64(event.timestampMs) : event.timestampMs
  return `${timestamp}\t${escapeTsv(event.deviceIp)}\t${event.errorCode}\n`
}

/** A batch of events as TabSeparated text: the cheapest form to build, send and parse. */
export class TsvBatch implements WriteBatch<DeviceEvent> {
  size = 0
  text = ''
  /** The layout is read when events arrive: `add()` connects (and learns it) first. */
  constructor(private readonly layout: () => TimestampLayout) {}

  append(event: DeviceEvent): void {
    this.text += toTsvRow(event, this.layout())
    this.size++
  }
}
