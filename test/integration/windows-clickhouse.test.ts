import {type ClickHouseClient, createClient} from '@clickhouse/client'
import {expect} from 'chai'
import type {DeviceEvent} from '../../src/backends/backend.js'
import {ClickHouseBackend, supportsDateTime64} from '../../src/backends/clickhouse/clickhouse-backend.js'
import {createTableSql} from '../../src/backends/clickhouse/schema.js'
import type {BackendOptions} from '../../src/backends/registry.js'
import {DAY_MS, HOUR_MS} from '../../src/query/count-query.js'
import {runIpc} from '../support/cli.js'
import {clickhouseUrl, uniqueName} from '../support/services.js'
import {CLEAN_ENV, exactCount, exactSeries, iso, windowEvents} from './windows-fixture.js'

function options(database: string, overrides: Partial<BackendOptions> = {}): BackendOptions {
  return {
    redisUrl: 'redis://unused:1',
    redisKey: 'unused',
    clickhouseUrl: clickhouseUrl(),
    clickhouseUser: 'default',
    clickhousePassword: '',
    clickhouseDatabase: database,
    requestTimeoutMs: 10_000,
    ...overrides,
  }
}

describe('time windows and error codes on clickhouse', () => {
  const database = uniqueName('ipc_test_windows')
  const {baseMs, events} = windowEvents()
  const at = (hour: number, minute = 0) => baseMs + hour * HOUR_MS + minute * 60_000
  let admin: ClickHouseClient

  const count = (...extra: string[]) =>
    runIpc(['count', '--backend', 'clickhouse', '--clickhouse-url', clickhouseUrl(), '--clickhouse-database', database, ...extra], {env: CLEAN_ENV})

  before(async () => {
    admin = createClient({url: clickhouseUrl(), request_timeout: 10_000})
    const clickhouse = new ClickHouseBackend(options(database, {batchSize: 500}))
    await clickhouse.connect()
    await clickhouse.add(events)
    await clickhouse.close()
  })

  after(async () => {
    await admin.command({query: `DROP DATABASE IF EXISTS \`${database}\``})
    await admin.close()
  })

  it('counts a range of whole hours exactly, half-open: an event at --until is out, one at --since is in', async () => {
    const query = {sinceMs: at(2), untilMs: at(4), errorCodes: []}
    const expected = exactCount(events, query)
    const result = await count('--since', iso(at(2)), '--until', iso(at(4)))
    expect(result.stderr).to.equal('')
    expect(result.stdout).to.equal(`${expected}\n`)
    // 192.0.2.1 sits exactly at the start, 192.0.2.2 exactly at the end.
    expect(exactCount(events, {...query, errorCodes: [-7]})).to.equal(1)
    expect((await count('--since', iso(at(2)), '--until', iso(at(4)), '--error-code=-7')).stdout).to.equal('1\n')
  })

  it('counts a range that does not align to hours exactly, to the millisecond', async () => {
    for (const [since, until] of [
      [at(1, 17) + 123, at(3, 41) + 7],
      [at(2, 5), at(2, 50)],
      [at(2, 30), at(3, 30)],
    ]) {
      const expected = exactCount(events, {sinceMs: since, untilMs: until, errorCodes: []})
      const result = await count('--since', iso(since), '--until', iso(until), '--json')
      expect(result.code, result.stderr).to.equal(0)
      expect(JSON.parse(result.stdout)).to.deep.equal({
        unique_device_ip_count: expected,
        backend: 'clickhouse',
        exact: true,
        since: iso(since),
        until: iso(until),
        error_codes: [],
      })
    }
  })

  it('counts devices that reported any of the given error codes, all-time and in a range', async () => {
    expect((await count('--error-code', '9')).stdout).to.equal(`${exactCount(events, {errorCodes: [9]})}\n`)
    expect(exactCount(events, {errorCodes: [9]})).to.equal(6)
    expect((await count('--error-code', '1', '--error-code', '2')).stdout).to.equal(`${exactCount(events, {errorCodes: [1, 2]})}\n`)
    // Partial hours at both ends: the error-code filter applies to both edges as well.
    expect((await count('--error-code', '9', '--since', iso(at(2, 30)), '--until', iso(at(4, 30)))).stdout).to.equal('6\n')
    expect((await count('--error-code', '1,2,9', '--since', iso(at(3, 10)), '--until', iso(at(5, 20)))).stdout).to.equal(
      `${exactCount(events, {sinceMs: at(3, 10), untilMs: at(5, 20), errorCodes: [1, 2, 9]})}\n`,
    )
  })

  it('prints a series per hour: JSON, and "bucket count" lines when piped', async () => {
    const query = {sinceMs: at(0, 30), untilMs: at(5, 45), errorCodes: [3]}
    const expected = exactSeries(events, query, 'hour')
    expect(expected.map((point) => point.count).every((value) => value > 0)).to.equal(true)
    const json = await count('--since', iso(query.sinceMs), '--until', iso(query.untilMs), '--error-code', '3', '--by', 'hour', '--json')
    expect(json.code, json.stderr).to.equal(0)
    const parsed = JSON.parse(json.stdout) as Record<string, unknown>
    expect(parsed).to.deep.include({by: 'hour', error_codes: [3], unique_device_ip_count: exactCount(events, query)})
    expect(parsed.series).to.deep.equal(expected.map((point) => ({bucket: iso(point.startMs), count: point.count})))

    const plain = await count('--since', iso(query.sinceMs), '--until', iso(query.untilMs), '--error-code', '3', '--by', 'hour')
    expect(plain.stdout).to.equal(expected.map((point) => `${iso(point.startMs)} ${point.count}\n`).join(''))
  })

  it('prints a series per day, with days outside the data at 0', async () => {
    const query = {sinceMs: baseMs - 2 * DAY_MS, untilMs: at(6), errorCodes: []}
    const result = await count('--since', iso(query.sinceMs), '--until', iso(query.untilMs), '--by', 'day', '--json')
    const parsed = JSON.parse(result.stdout) as {series: Array<{bucket: string; count: number}>}
    const expected = exactSeries(events, query, 'day')
    expect(parsed.series).to.deep.equal(expected.map((point) => ({bucket: iso(point.startMs), count: point.count})))
    expect(parsed.series[0].count).to.equal(0)
    expect(parsed.series.reduce((sum, point) => sum + point.count, 0)).to.be.at.least(exactCount(events, {errorCodes: []}))
  })

  it('keeps the plain output and JSON unchanged without the new flags', async () => {
    const all = new Set(events.map((event) => event.deviceIp)).size
    expect((await count()).stdout).to.equal(`${all}\n`)
    expect(JSON.parse((await count('--json')).stdout)).to.deep.equal({unique_device_ip_count: all, backend: 'clickhouse', exact: true})
  })

  it('refuses bad query flags with exit code 2 and nothing on stdout', async () => {
    for (const flags of [
      ['--since', 'yesterday'],
      ['--error-code', '300'],
      ['--by', 'hour'],
      ['--since', '1h', '--until', '2h'],
    ]) {
      const result = await count(...flags)
      expect(result.code, flags.join(' ')).to.equal(2)
      expect(result.stdout).to.equal('')
      expect(result.stderr).to.match(/^ipc count: .+\n$/)
    }
  })

  it('reads the rollups, and they agree with counting the raw events', async () => {
    const clickhouse = new ClickHouseBackend(options(database))
    await clickhouse.connect()
    try {
      expect(clickhouse.usesRollups).to.equal(true)
      const devices = await admin.query({query: `SELECT uniqExact(device_ip) AS n FROM \`${database}\`.events_devices`, format: 'JSONEachRow'})
      expect(Number((await devices.json<{n: string}>())[0].n)).to.equal(await clickhouse.count())
      const perHour = await admin.query({
        query: `SELECT toUnixTimestamp(hour) * 1000 AS hour, uniqExact(device_ip) AS n FROM \`${database}\`.events_hourly GROUP BY hour ORDER BY hour`,
        format: 'JSONEachRow',
      })
      const rows = await perHour.json<{hour: string; n: string}>()
      expect(rows.map((row) => [Number(row.hour), Number(row.n)])).to.deep.equal(
        exactSeries(events, {sinceMs: at(0), untilMs: at(6), errorCodes: []}, 'hour').map((point) => [point.startMs, point.count]),
      )
    } finally {
      await clickhouse.close()
    }
  })

  it('fills the rollups from an events table that existed before them', async () => {
    const legacy = uniqueName('ipc_test_legacy')
    try {
      const version = await admin.query({query: 'SELECT version() AS version', format: 'JSONEachRow'})
      const [{version: serverVersion}] = await version.json<{version: string}>()
      const layout = supportsDateTime64(serverVersion) ? 'datetime64' : 'epoch-ms'
      await admin.command({query: `CREATE DATABASE \`${legacy}\``})
      await admin.command({query: createTableSql(`\`${legacy}\`.\`events\``, layout)})
      const old: DeviceEvent[] = events.slice(0, 700)
      const rows = old.map((event) =>
        layout === 'datetime64'
          ? {timestamp: new Date(event.timestampMs).toISOString().slice(0, 23).replace('T', ' '), device_ip: event.deviceIp, error_code: event.errorCode}
          : {timestamp_ms: event.timestampMs, device_ip: event.deviceIp, error_code: event.errorCode},
      )
      await admin.insert({table: `\`${legacy}\`.events`, values: rows, format: 'JSONEachRow'})

      const clickhouse = new ClickHouseBackend(options(legacy))
      await clickhouse.connect()
      expect(clickhouse.usesRollups).to.equal(true)
      const later: DeviceEvent[] = events.slice(700)
      await clickhouse.add(later)
      await clickhouse.flush()
      const query = {sinceMs: at(0, 20), untilMs: at(5, 10), errorCodes: [0, 4]}
      expect(await clickhouse.count()).to.equal(exactCount(events, {errorCodes: []}))
      expect(await clickhouse.countUnique(query)).to.equal(exactCount(events, query))
      expect(await clickhouse.countSeries(query, 'hour')).to.deep.equal(exactSeries(events, query, 'hour'))
      await clickhouse.close()
    } finally {
      await admin.command({query: `DROP DATABASE IF EXISTS \`${legacy}\``})
    }
  })
})
