import type {ClickHouseClient} from '@clickhouse/client'
import {expect} from 'chai'
import type {DeviceEvent} from '../../src/backends/backend.js'
import {ClickHouseBackend} from '../../src/backends/clickhouse/clickhouse-backend.js'
import type {ClickHouseOptions} from '../../src/backends/clickhouse/options.js'
import {createSchemaSql, type TimestampLayout} from '../../src/backends/clickhouse/schema.js'
import {DAY_MS, HOUR_MS} from '../../src/query/count-query.js'
import {uniqueName} from '../support/services.js'
import {exactCount, exactSeries, windowEvents} from './windows-fixture.js'

/** A ClickHouse engine the backend is checked on: the Debian server over HTTP, or an embedded current one. */
export interface EngineUnderTest {
  /** The layout a new table gets on this engine. */
  layout: TimestampLayout
  /** Backend options for a database on this engine. */
  options(database: string): ClickHouseOptions
  /** A client for checks and set-up SQL. */
  admin(): ClickHouseClient
  /** Leave the test databases behind (an embedded engine whose folder is removed whole). */
  keepDatabases?: boolean
}

const T2021 = Date.UTC(2021, 5, 1)

/** Events at the edges of what the hourly rollup's DateTime holds, from devices that have no other events. */
export function timeEdgeEvents(layout: TimestampLayout): DeviceEvent[] {
  const edges = [
    Date.UTC(1969, 11, 31, 23, 59, 59, 999),
    Date.UTC(1970, 0, 1),
    Date.UTC(2106, 1, 7, 6, 28, 15),
    Date.UTC(2106, 1, 7, 6, 28, 16),
    Date.UTC(9999, 11, 31, 23, 59, 59, 999),
    Date.UTC(1900, 0, 1) - DAY_MS * 365 * 800,
  ]
  // Current servers read the text `0000-01-01 …` of a DateTime64 as another year; see docs/backends.md.
  if (layout === 'epoch-ms') edges.push(Date.UTC(2000, 0, 1) - 2000 * 365.2425 * DAY_MS)
  return edges.map((timestampMs, index) => ({timestampMs, deviceIp: `192.0.2.${index + 1}`, errorCode: 5}))
}

function withSources(events: readonly DeviceEvent[], topic: string, partitions = 3): DeviceEvent[] {
  return events.map((event, index) => ({...event, source: {topic, partition: index % partitions, offset: String(Math.floor(index / partitions))}}))
}

async function rows<T>(admin: ClickHouseClient, query: string): Promise<T[]> {
  return (await admin.query({query, format: 'JSONEachRow'})).json<T>()
}

/** The checks every ClickHouse engine must pass: counts, each event once, time edges, earlier layouts. */
export function describeEngineChecks(engine: () => EngineUnderTest): void {
  let admin: ClickHouseClient
  const databases: string[] = []
  const newDatabase = (prefix: string) => {
    const name = uniqueName(prefix)
    databases.push(name)
    return name
  }

  before(() => {
    admin = engine().admin()
  })

  after(async () => {
    if (!engine().keepDatabases) for (const database of databases) await admin.command({query: `DROP DATABASE IF EXISTS \`${database}\``})
    await admin.close()
  })

  it('counts exactly through the rollups: all-time, ranges to the millisecond, error codes, series per hour and day', async () => {
    const {baseMs, events} = windowEvents()
    const backend = new ClickHouseBackend({...engine().options(newDatabase('ipc_engine_counts')), batchSize: 700})
    try {
      await backend.connect()
      expect(backend.timestampLayout).to.equal(engine().layout)
      expect(backend.usesRollups).to.equal(true)
      await backend.add(withSources(events, 'counts'))
      await backend.flush()
      expect(await backend.count()).to.equal(exactCount(events, {errorCodes: []}))
      expect(await backend.countUnique({errorCodes: [9]})).to.equal(exactCount(events, {errorCodes: [9]}))
      for (const query of [
        {sinceMs: baseMs + 2 * HOUR_MS, untilMs: baseMs + 4 * HOUR_MS, errorCodes: []},
        {sinceMs: baseMs + 77 * 60_000 + 123, untilMs: baseMs + 221 * 60_000 + 7, errorCodes: [1, 2, 9]},
        {sinceMs: baseMs + 30 * 60_000, untilMs: baseMs + 5 * HOUR_MS + 45 * 60_000, errorCodes: [3]},
      ]) {
        expect(await backend.countUnique(query)).to.equal(exactCount(events, query))
        expect(await backend.countSeries(query, 'hour')).to.deep.equal(exactSeries(events, query, 'hour'))
      }
      const days = {sinceMs: baseMs - 2 * DAY_MS, untilMs: baseMs + 6 * HOUR_MS, errorCodes: []}
      expect(await backend.countSeries(days, 'day')).to.deep.equal(exactSeries(events, days, 'day'))
    } finally {
      await backend.close()
    }
  })

  it('stores each Kafka message once however often it is replayed, and never merges events without coordinates', async () => {
    const database = newDatabase('ipc_engine_once')
    const {events} = windowEvents()
    const sourced = withSources(events.slice(0, 1500), 'once')
    const backend = new ClickHouseBackend({...engine().options(database), batchSize: 400})
    try {
      await backend.connect()
      expect(backend.deduplicates).to.equal(true)
      // A replay from an older commit: the first 1,000 again, in other batches, then the rest.
      await backend.add(sourced.slice(0, 1000))
      await backend.flush()
      await backend.add(sourced.slice(200, 1500))
      await backend.flush()
      expect(await backend.eventCount()).to.equal(1500)
      const perDevice = await rows<{device_ip: string; events: string}>(
        admin,
        `SELECT device_ip, count() AS events FROM \`${database}\`.events_deduplicated GROUP BY device_ip ORDER BY device_ip`,
      )
      const truth = new Map<string, number>()
      for (const event of sourced) truth.set(event.deviceIp, (truth.get(event.deviceIp) ?? 0) + 1)
      expect(perDevice.map((row) => [row.device_ip, Number(row.events)])).to.deep.equal([...truth].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      const stored = await rows<{kafka_topic: string; kafka_partition: number; kafka_offset: string}>(
        admin,
        `SELECT kafka_topic, kafka_partition, kafka_offset FROM \`${database}\`.events_deduplicated WHERE kafka_partition = 2 ORDER BY kafka_offset LIMIT 3`,
      )
      expect(stored.map((row) => [row.kafka_topic, Number(row.kafka_partition), Number(row.kafka_offset)])).to.deep.equal([
        ['once', 2, 0],
        ['once', 2, 1],
        ['once', 2, 2],
      ])
      const plain = {timestampMs: T2021, deviceIp: '198.51.100.1', errorCode: 0}
      await backend.add([plain, plain, plain])
      await backend.flush()
      expect(await backend.eventCount()).to.equal(1503)
      await admin.command({query: `OPTIMIZE TABLE \`${database}\`.events FINAL`})
      expect(await backend.rowCount(), 'rows after the merge').to.equal(1503)
    } finally {
      await backend.close()
    }
  })

  it('keeps events before 1970 and from 2106-02-07T06:00Z on out of the hourly rollup, and counts them from the raw events', async () => {
    const layout = engine().layout
    const ordinary: DeviceEvent[] = Array.from({length: 400}, (_, index) => ({
      timestampMs: T2021 + index * 37 * 60_000,
      deviceIp: `10.9.${index >> 8}.${index & 255}`,
      errorCode: index % 4,
    }))
    const edges = timeEdgeEvents(layout)
    const events = [...ordinary, ...edges]
    const database = newDatabase('ipc_engine_edges')
    const backend = new ClickHouseBackend(engine().options(database))
    try {
      await backend.add(withSources(events, 'edges'))
      await backend.flush()
      expect(backend.usesRollups).to.equal(true)
      const queries = [
        {sinceMs: Date.UTC(2021, 0, 1), untilMs: Date.UTC(2022, 0, 1), errorCodes: []},
        {untilMs: Date.UTC(2000, 0, 1), errorCodes: []},
        {sinceMs: Date.UTC(2000, 0, 1), errorCodes: []},
        {sinceMs: Date.UTC(1969, 11, 31, 23), untilMs: Date.UTC(1970, 0, 1, 1), errorCodes: []},
        {sinceMs: Date.UTC(1970, 0, 1), untilMs: Date.UTC(1970, 0, 1, 0, 0, 0, 1), errorCodes: [5]},
        {sinceMs: Date.UTC(2106, 1, 7, 5), untilMs: Date.UTC(2106, 1, 7, 8), errorCodes: []},
        {sinceMs: Date.UTC(2106, 1, 7, 6, 28, 16), untilMs: Date.UTC(2106, 1, 8), errorCodes: [5]},
        {sinceMs: Date.UTC(2100, 0, 1), errorCodes: []},
        {errorCodes: [5]},
      ]
      for (const query of queries) expect(await backend.countUnique(query), JSON.stringify(query)).to.equal(exactCount(events, query))
      for (const query of [
        {sinceMs: Date.UTC(1969, 11, 31, 22), untilMs: Date.UTC(1970, 0, 1, 2), errorCodes: []},
        {sinceMs: Date.UTC(2106, 1, 7, 4), untilMs: Date.UTC(2106, 1, 7, 8), errorCodes: []},
      ]) {
        expect(await backend.countSeries(query, 'hour')).to.deep.equal(exactSeries(events, query, 'hour'))
      }
      const hourly = await rows<{n: string}>(
        admin,
        `SELECT count() AS n FROM \`${database}\`.events_hourly WHERE device_ip IN (${edges.map((event) => `'${event.deviceIp}'`).join(', ')})`,
      )
      // Of the edges only 1970-01-01T00:00Z is in an hour the rollup holds: 2106-02-07T06:00Z is not whole in a DateTime.
      expect(Number(hourly[0].n)).to.equal(1)
      expect(await backend.readEvents()).to.have.lengthOf(events.length)
    } finally {
      await backend.close()
    }
  })

  it('rebuilds an hourly rollup that an earlier version filled with wrapped-around hours', async () => {
    const layout = engine().layout
    const database = newDatabase('ipc_engine_rebuild')
    const events = [...timeEdgeEvents(layout), {timestampMs: T2021, deviceIp: '10.1.1.1', errorCode: 0}]
    // The schema as it was: the hourly view without its range condition, and the earlier marker.
    const statements = createSchemaSql({database, table: 'events', layout}).map((statement) => statement.replace(/ WHERE timestamp.*$/s, ''))
    for (const statement of statements) await admin.command({query: statement})
    await admin.command({query: `CREATE TABLE \`${database}\`.events_rollups_ready (created_at DateTime DEFAULT now()) ENGINE = TinyLog`})
    const time = layout === 'datetime64' ? 'timestamp' : 'timestamp_ms'
    const values = events
      .map(
        (event) =>
          `(${layout === 'datetime64' ? `fromUnixTimestamp64Milli(toInt64(${event.timestampMs}), 'UTC')` : event.timestampMs}, ` +
          `'${event.deviceIp}', ${event.errorCode}, 'old', 0, ${event.timestampMs})`,
      )
      .join(', ')
    await admin.command({
      query: `INSERT INTO \`${database}\`.events (${time}, device_ip, error_code, kafka_topic, kafka_partition, kafka_offset) VALUES ${values}`,
    })
    const wrapped = await rows<{n: string}>(admin, `SELECT count() AS n FROM \`${database}\`.events_hourly`)
    expect(Number(wrapped[0].n), 'the earlier view stored every event in the rollup').to.equal(events.length)

    const backend = new ClickHouseBackend(engine().options(database))
    try {
      await backend.connect()
      expect(backend.usesRollups).to.equal(true)
      const query = {sinceMs: Date.UTC(2021, 0, 1), untilMs: Date.UTC(2022, 0, 1), errorCodes: []}
      expect(await backend.countUnique(query)).to.equal(1)
      expect(await backend.countUnique({untilMs: Date.UTC(2000, 0, 1), errorCodes: []})).to.equal(
        exactCount(events, {untilMs: Date.UTC(2000, 0, 1), errorCodes: []}),
      )
      const rebuilt = await rows<{n: string}>(admin, `SELECT count() AS n FROM \`${database}\`.events_hourly`)
      expect(Number(rebuilt[0].n)).to.equal(2)
      const markers = await rows<{name: string}>(admin, `SELECT name FROM system.tables WHERE database = '${database}' AND name LIKE '%rollups_ready%'`)
      expect(markers.map((row) => row.name)).to.deep.equal(['events_rollups_ready_v2'])
    } finally {
      await backend.close()
    }
  })

  it('keeps using an events table of the earlier layout (no coordinates): every insert appends, counts as before', async () => {
    const layout = engine().layout
    const database = newDatabase('ipc_engine_unkeyed')
    const time =
      layout === 'datetime64'
        ? `timestamp DateTime64(3, 'UTC')`
        : `timestamp_ms Int64, timestamp DateTime('UTC') MATERIALIZED toDateTime(intDiv(timestamp_ms, 1000), 'UTC')`
    await admin.command({query: `CREATE DATABASE \`${database}\``})
    await admin.command({
      query:
        `CREATE TABLE \`${database}\`.events (${time}, device_ip String, error_code Int8) ENGINE = MergeTree ` +
        `PARTITION BY toYYYYMM(timestamp) ORDER BY device_ip`,
    })
    const {baseMs, events} = windowEvents()
    const backend = new ClickHouseBackend(engine().options(database))
    try {
      await backend.connect()
      expect(backend.deduplicates).to.equal(false)
      await backend.add(withSources(events.slice(0, 500), 'unkeyed'))
      await backend.add(withSources(events.slice(0, 500), 'unkeyed'))
      await backend.flush()
      expect(await backend.rowCount()).to.equal(1000)
      expect(await backend.eventCount()).to.equal(1000)
      const part = events.slice(0, 500)
      expect(await backend.count()).to.equal(exactCount(part, {errorCodes: []}))
      const query = {sinceMs: baseMs + 20 * 60_000, untilMs: baseMs + 2 * HOUR_MS, errorCodes: [0, 4]}
      expect(await backend.countUnique(query)).to.equal(exactCount(part, query))
      const views = await rows<{n: string}>(admin, `SELECT count() AS n FROM system.tables WHERE database = '${database}' AND name = 'events_deduplicated'`)
      expect(Number(views[0].n)).to.equal(0)
    } finally {
      await backend.close()
    }
  })
}
