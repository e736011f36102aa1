import {EventEmitter} from 'node:events'
import {
  type BoundedCountQuery,
  bucketStart,
  type BucketSize,
  type CountQuery,
  denseSeries,
  HOUR_MS,
  isAllTime,
  matchesQuery,
  seriesBuckets,
  type SeriesPoint,
  validateQuery,
} from '../query/count-query.js'
import {type AddReceipt, BackendError, type BackendEvents, type DeviceEvent, type FreshnessBackend, type RangeCountBackend} from './backend.js'

const DURABLE: AddReceipt = {durable: Promise.resolve()}

/** Per device IP: error code → the distinct event times (epoch ms) it was reported with. */
type HourDevices = Map<string, Map<number, Set<number>>>

/**
 * Exact, in-process count. Nothing survives the process: for one-shot runs and tests.
 *
 * Keeps every distinct (device, error code, event time) per UTC hour, which is what an exact count
 * of any time range and error-code set needs; duplicates of an event take no extra memory.
 *
 * Follows the lifecycle of {@link CountBackend} with nothing to wait for: `connect()` has nothing to
 * reach, events are stored by `add()` itself (its receipts are durable at once), and after
 * `close()` every call but `flush()` and `close()` rejects.
 */
export class MemoryBackend extends EventEmitter<BackendEvents> implements RangeCountBackend, FreshnessBackend {
  readonly name = 'memory'
  readonly exact = true
  readonly location = 'memory'
  readonly timeResolution = 'exact'
  readonly freshnessMeasure = 'newest-event'
  private newestMs: number | undefined
  private readonly devices = new Set<string>()
  private readonly hours = new Map<number, HourDevices>()
  private closed = false
  /** Stored as added: nothing waits. */
  readonly unwrittenEvents = 0

  async connect(): Promise<void> {
    this.assertOpen()
  }

  async add(events: readonly DeviceEvent[]): Promise<AddReceipt> {
    this.assertOpen()
    for (const event of events) {
      this.devices.add(event.deviceIp)
      if (this.newestMs === undefined || event.timestampMs > this.newestMs) this.newestMs = event.timestampMs
      const hour = bucketStart(event.timestampMs, 'hour')
      let devices = this.hours.get(hour)
      if (!devices) this.hours.set(hour, (devices = new Map()))
      let codes = devices.get(event.deviceIp)
      if (!codes) devices.set(event.deviceIp, (codes = new Map()))
      let times = codes.get(event.errorCode)
      if (!times) codes.set(event.errorCode, (times = new Set()))
      times.add(event.timestampMs)
    }
    return DURABLE
  }

  async flush(): Promise<void> {}

  async count(): Promise<number> {
    this.assertOpen()
    return this.devices.size
  }

  /** The time of the newest event added. */
  async freshness(): Promise<number | undefined> {
    this.assertOpen()
    return this.newestMs
  }

  async countUnique(query: CountQuery): Promise<number> {
    this.assertOpen()
    validateQuery(query)
    if (isAllTime(query)) return this.devices.size
    return this.devicesIn(query).size
  }

  async countSeries(query: BoundedCountQuery, by: BucketSize): Promise<SeriesPoint[]> {
    this.assertOpen()
    validateQuery(query)
    const counts = new Map<number, number>()
    for (const bucket of seriesBuckets(query, by)) {
      counts.set(bucket.startMs, this.devicesIn({...query, sinceMs: bucket.sinceMs, untilMs: bucket.untilMs}).size)
    }
    return denseSeries(query, by, counts)
  }

  async close(): Promise<void> {
    this.closed = true
  }

  private assertOpen(): void {
    if (this.closed) throw new BackendError('memory backend is closed', this.name, this.location)
  }

  private devicesIn(query: CountQuery): Set<string> {
    const found = new Set<string>()
    for (const [hour, devices] of this.hoursIn(query)) {
      const whole = (query.sinceMs === undefined || query.sinceMs <= hour) && (query.untilMs === undefined || hour + HOUR_MS <= query.untilMs)
      for (const [device, codes] of devices) {
        if (found.has(device)) continue
        for (const [code, times] of codes) {
          if (query.errorCodes.length > 0 && !query.errorCodes.includes(code)) continue
          if (whole || [...times].some((time) => matchesQuery(time, code, query))) {
            found.add(device)
            break
          }
        }
      }
    }
    return found
  }

  /** The stored hours the range touches: looked up one by one for short ranges, filtered otherwise. */
  private *hoursIn(query: CountQuery): Iterable<[number, HourDevices]> {
    const first = query.sinceMs === undefined ? undefined : bucketStart(query.sinceMs, 'hour')
    const hoursInRange = first === undefined || query.untilMs === undefined ? Infinity : (query.untilMs - first) / HOUR_MS
    if (hoursInRange <= this.hours.size) {
      for (let hour = first as number; hour < (query.untilMs as number); hour += HOUR_MS) {
        const devices = this.hours.get(hour)
        if (devices) yield [hour, devices]
      }
      return
    }
    for (const entry of this.hours) {
      const [hour] = entry
      if (first !== undefined && hour < first) continue
      if (query.untilMs !== undefined && hour >= query.untilMs) continue
      yield entry
    }
  }
}
