import type {DeviceEvent} from '../../src/backends/backend.js'
import {bucketCeil, bucketStart, type BucketSize, type CountQuery, HOUR_MS, matchesQuery, seriesBuckets} from '../../src/query/count-query.js'

/**
 * Events over six UTC hours with known devices per hour and per error code, for the time-window
 * tests of every backend. The hours end one hour before the current one, so the hourly Redis
 * buckets are inside their default retention.
 *
 * Hour h (0..5) has devices 100h .. 100h+299 (neighbouring hours share devices), each with one event
 * at a minute and second that depend on the device, error code `device % 5`; in hour 3 every 50th
 * device also reports code 9. Two events sit exactly on hour boundaries to check half-open ranges.
 */
export function windowEvents(nowMs = Date.now()): {baseMs: number; events: DeviceEvent[]} {
  const baseMs = bucketStart(nowMs, 'hour') - 7 * HOUR_MS
  const events: DeviceEvent[] = []
  for (let hour = 0; hour < 6; hour++) {
    for (let device = hour * 100; device < hour * 100 + 300; device++) {
      const timestampMs = baseMs + hour * HOUR_MS + ((device * 7 + hour) % 60) * 60_000 + (device % 60) * 1000 + (device % 1000)
      events.push({timestampMs, deviceIp: deviceIp(device), errorCode: device % 5})
      if (hour === 3 && device % 50 === 0) events.push({timestampMs: timestampMs + 1, deviceIp: deviceIp(device), errorCode: 9})
    }
  }
  events.push(
    {timestampMs: baseMs + 2 * HOUR_MS, deviceIp: '192.0.2.1', errorCode: -7},
    {timestampMs: baseMs + 4 * HOUR_MS, deviceIp: '192.0.2.2', errorCode: -7},
  )
  return {baseMs, events}
}

export function deviceIp(device: number): string {
  return `10.20.${device >> 8}.${device & 255}`
}

/** The exact number of distinct devices matching the query. */
export function exactCount(events: readonly DeviceEvent[], query: CountQuery): number {
  return new Set(events.filter((event) => matchesQuery(event.timestampMs, event.errorCode, query)).map((event) => event.deviceIp)).size
}

/** The same query widened outward to whole hours, as the Redis backend counts it. */
export function hourRounded(query: CountQuery): CountQuery {
  return {
    ...query,
    sinceMs: query.sinceMs === undefined ? undefined : bucketStart(query.sinceMs, 'hour'),
    untilMs: query.untilMs === undefined ? undefined : bucketCeil(query.untilMs, 'hour'),
  }
}

/** Exact counts per bucket, each bucket clipped to the query's range (optionally widened to whole hours). */
export function exactSeries(
  events: readonly DeviceEvent[],
  query: CountQuery & {sinceMs: number; untilMs: number},
  by: BucketSize,
  widenToHours = false,
): Array<{startMs: number; count: number}> {
  return seriesBuckets(query, by).map((bucket) => {
    const part = {...query, sinceMs: bucket.sinceMs, untilMs: bucket.untilMs}
    return {startMs: bucket.startMs, count: exactCount(events, widenToHours ? hourRounded(part) : part)}
  })
}

/** Within the HyperLogLog's error: 2% (about 2.5 standard errors), at least 1. */
export function withinHllError(estimate: number, exact: number): boolean {
  return Math.abs(estimate - exact) <= Math.max(1, Math.ceil(exact * 0.02))
}

/** Flags only: no backend setting leaks in from the environment the tests run in. */
export const CLEAN_ENV = {
  IPC_BACKEND: undefined,
  IPC_REDIS_KEY: undefined,
  CLICKHOUSE_DATABASE: undefined,
  CLICKHOUSE_USER: undefined,
  CLICKHOUSE_PASSWORD: undefined,
  REDIS_CLUSTER_NODES: undefined,
  CLICKHOUSE_CLUSTER: undefined,
  IPC_REDIS_BUCKET_TTL: undefined,
}

export function iso(ms: number): string {
  return new Date(ms).toISOString()
}
