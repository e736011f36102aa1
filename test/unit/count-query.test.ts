import {expect} from 'chai'
import fc from 'fast-check'
import {
  bucketStart,
  buildCountQuery,
  CountQueryError,
  DAY_MS,
  denseSeries,
  hasQueryOptions,
  HOUR_MS,
  isAllTime,
  matchesQuery,
  MAX_SERIES_BUCKETS,
  parseErrorCode,
  parseTimeBound,
  queryJson,
  seriesBuckets,
  validateQuery,
} from '../../src/query/count-query.js'
import {countSeriesSql, countUniqueSql, planRange, rawRangeConditions} from '../../src/backends/clickhouse/queries.js'
import {ROLLUP_END_MS} from '../../src/backends/clickhouse/schema.js'
import {MemoryBackend} from '../../src/backends/memory.js'

const NOW = Date.UTC(2024, 8, 18, 14, 30, 15, 250)
const H = (hour: number, minute = 0) => Date.UTC(2024, 8, 18, hour, minute)

describe('count query parsing', () => {
  it('reads relative times as that long before now', () => {
    expect(parseTimeBound('1h', NOW)).to.equal(NOW - HOUR_MS)
    expect(parseTimeBound('24h', NOW)).to.equal(NOW - DAY_MS)
    expect(parseTimeBound('7d', NOW)).to.equal(NOW - 7 * DAY_MS)
    expect(parseTimeBound('2w', NOW)).to.equal(NOW - 14 * DAY_MS)
    expect(parseTimeBound('90s', NOW)).to.equal(NOW - 90_000)
    expect(parseTimeBound('15m', NOW)).to.equal(NOW - 900_000)
    expect(parseTimeBound(' now ', NOW)).to.equal(NOW)
  })

  it('reads every timestamp form parseTimestamp accepts, and a bare date as midnight UTC', () => {
    expect(parseTimeBound('2024-09-18T14:00:00Z', NOW)).to.equal(H(14))
    expect(parseTimeBound('2024-09-18T14:00:00', NOW)).to.equal(H(14))
    expect(parseTimeBound('2024-09-18 16:00:00+02:00', NOW)).to.equal(H(14))
    expect(parseTimeBound('1726668000', NOW)).to.equal(H(14))
    expect(parseTimeBound('1726668000000', NOW)).to.equal(H(14))
    expect(parseTimeBound('2024-09-18', NOW)).to.equal(H(0))
  })

  it('names the flag and the accepted forms when a bound is not a time', () => {
    for (const text of ['yesterday', '', '2024-02-30', '5x', '-1h', '2024-09-18T25:00:00Z']) {
      expect(() => parseTimeBound(text, NOW, '--until'), text).to.throw(CountQueryError, `invalid --until "${text}"`)
    }
    expect(() => parseTimeBound('2024-02-30', NOW)).to.throw(CountQueryError, 'day 30 does not exist')
    expect(() => parseTimeBound('999999999999d', NOW)).to.throw(CountQueryError, 'before the year 0000')
  })

  it('reads error codes -128..127 and nothing else', () => {
    expect(['-128', '0', '+7', ' 127 '].map((text) => parseErrorCode(text))).to.deep.equal([-128, 0, 7, 127])
    for (const text of ['128', '-129', '1.5', 'x', '', '3,4', '1e2']) {
      expect(() => parseErrorCode(text), text).to.throw(CountQueryError, 'invalid --error-code')
    }
  })

  it('defaults --until to now when --since is given, and leaves an unbounded query unbounded', () => {
    expect(buildCountQuery({since: '2h'}, NOW)).to.deep.equal({query: {sinceMs: NOW - 2 * HOUR_MS, untilMs: NOW, errorCodes: []}})
    expect(buildCountQuery({errorCodes: ['5', '3', '5']}, NOW)).to.deep.equal({query: {sinceMs: undefined, untilMs: undefined, errorCodes: [3, 5]}})
    expect(buildCountQuery({until: '2024-09-18T00:00:00Z'}, NOW).query).to.deep.include({sinceMs: undefined, untilMs: H(0)})
  })

  it('refuses an empty range, --by without --since and series with too many buckets', () => {
    expect(() => buildCountQuery({since: '1h', until: '2h'}, NOW)).to.throw(CountQueryError, 'must be before --until')
    expect(() => buildCountQuery({since: 'now', until: 'now'}, NOW)).to.throw(CountQueryError, 'is empty')
    expect(() => buildCountQuery({by: 'hour'}, NOW)).to.throw(CountQueryError, '--by needs --since')
    expect(() => buildCountQuery({since: '1h', by: 'week'}, NOW)).to.throw(CountQueryError, 'invalid --by "week"')
    expect(() => buildCountQuery({since: '3000d', by: 'hour'}, NOW)).to.throw(CountQueryError, 'use --by day')
    expect(buildCountQuery({since: '3000d', by: 'day'}, NOW).by).to.equal('day')
    expect(MAX_SERIES_BUCKETS).to.be.greaterThan(366 * 24)
  })

  it('tells whether any query option was given, and describes the query for JSON', () => {
    expect(hasQueryOptions({})).to.equal(false)
    expect(hasQueryOptions({errorCodes: []})).to.equal(false)
    expect(hasQueryOptions({errorCodes: ['1']})).to.equal(true)
    expect(hasQueryOptions({until: 'now'})).to.equal(true)
    expect(isAllTime({errorCodes: []})).to.equal(true)
    expect(queryJson({sinceMs: H(13), untilMs: H(14), errorCodes: [-1, 2]})).to.deep.equal({
      since: '2024-09-18T13:00:00.000Z',
      until: '2024-09-18T14:00:00.000Z',
      error_codes: [-1, 2],
    })
    expect(queryJson({errorCodes: []})).to.deep.equal({since: null, until: null, error_codes: []})
  })

  it('validates queries that come from other callers', () => {
    expect(() => validateQuery({sinceMs: 1.5, errorCodes: []})).to.throw(CountQueryError)
    expect(() => validateQuery({sinceMs: 5, untilMs: 5, errorCodes: []})).to.throw(CountQueryError, 'empty')
    expect(() => validateQuery({errorCodes: [300]})).to.throw(CountQueryError, 'error code')
    expect(validateQuery({sinceMs: 1, untilMs: 2, errorCodes: [1]})).to.deep.equal({sinceMs: 1, untilMs: 2, errorCodes: [1]})
  })
})

describe('count query buckets', () => {
  it('aligns buckets to UTC hours and days, also before 1970', () => {
    expect(bucketStart(H(14, 59), 'hour')).to.equal(H(14))
    expect(bucketStart(H(14, 59), 'day')).to.equal(H(0))
    expect(bucketStart(-1, 'hour')).to.equal(-HOUR_MS)
    expect(bucketStart(-HOUR_MS, 'hour')).to.equal(-HOUR_MS)
  })

  it('lists every bucket the range touches, clipped to the range', () => {
    expect(seriesBuckets({sinceMs: H(12, 30), untilMs: H(14, 15), errorCodes: []}, 'hour')).to.deep.equal([
      {startMs: H(12), sinceMs: H(12, 30), untilMs: H(13)},
      {startMs: H(13), sinceMs: H(13), untilMs: H(14)},
      {startMs: H(14), sinceMs: H(14), untilMs: H(14, 15)},
    ])
    expect(seriesBuckets({sinceMs: H(12), untilMs: H(14), errorCodes: []}, 'hour').map((bucket) => bucket.startMs)).to.deep.equal([H(12), H(13)])
    expect(seriesBuckets({sinceMs: H(23), untilMs: H(23) + 2 * HOUR_MS, errorCodes: []}, 'day')).to.deep.equal([
      {startMs: H(0), sinceMs: H(23), untilMs: H(0) + DAY_MS},
      {startMs: H(0) + DAY_MS, sinceMs: H(0) + DAY_MS, untilMs: H(23) + 2 * HOUR_MS},
    ])
  })

  it('fills buckets without a count with 0', () => {
    const query = {sinceMs: H(12), untilMs: H(15), errorCodes: []}
    expect(denseSeries(query, 'hour', new Map([[H(13), 4]]))).to.deep.equal([
      {startMs: H(12), count: 0},
      {startMs: H(13), count: 4},
      {startMs: H(14), count: 0},
    ])
  })

  it('matches events by half-open range and any of the error codes', () => {
    const query = {sinceMs: H(12), untilMs: H(13), errorCodes: [3, 5]}
    expect(matchesQuery(H(12), 3, query)).to.equal(true)
    expect(matchesQuery(H(13) - 1, 5, query)).to.equal(true)
    expect(matchesQuery(H(13), 5, query)).to.equal(false)
    expect(matchesQuery(H(12) - 1, 3, query)).to.equal(false)
    expect(matchesQuery(H(12), 4, query)).to.equal(false)
    expect(matchesQuery(H(12), 4, {errorCodes: []})).to.equal(true)
  })
})

describe('MemoryBackend range counts', () => {
  it('counts exactly by range and error code, per hour and per day, clipping partial buckets', async () => {
    const memory = new MemoryBackend()
    await memory.add([
      {timestampMs: H(12, 10), deviceIp: 'a', errorCode: 1},
      {timestampMs: H(12, 50), deviceIp: 'b', errorCode: 2},
      {timestampMs: H(13, 5), deviceIp: 'a', errorCode: 2},
      {timestampMs: H(13, 55), deviceIp: 'c', errorCode: 1},
      {timestampMs: H(13, 55), deviceIp: 'c', errorCode: 1},
      {timestampMs: H(23, 59), deviceIp: 'd', errorCode: -7},
    ])
    expect(await memory.countUnique({errorCodes: []})).to.equal(4)
    expect(await memory.countUnique({sinceMs: H(12, 30), untilMs: H(13, 55), errorCodes: []})).to.equal(2)
    expect(await memory.countUnique({sinceMs: H(12, 30), untilMs: H(13, 55) + 1, errorCodes: []})).to.equal(3)
    expect(await memory.countUnique({errorCodes: [1]})).to.equal(2)
    expect(await memory.countUnique({errorCodes: [-7, 2]})).to.equal(3)
    expect(await memory.countUnique({untilMs: H(13), errorCodes: [2]})).to.equal(1)
    expect(await memory.countSeries({sinceMs: H(12, 30), untilMs: H(14), errorCodes: []}, 'hour')).to.deep.equal([
      {startMs: H(12), count: 1},
      {startMs: H(13), count: 2},
    ])
    expect(await memory.countSeries({sinceMs: H(0), untilMs: H(0) + 2 * DAY_MS, errorCodes: [1, -7]}, 'day')).to.deep.equal([
      {startMs: H(0), count: 3},
      {startMs: H(0) + DAY_MS, count: 0},
    ])
  })

  it('agrees with a brute-force count over random events and ranges', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({minute: fc.integer({min: 0, max: 600}), device: fc.integer({min: 0, max: 20}), code: fc.integer({min: 0, max: 3})}), {
          maxLength: 60,
        }),
        fc.integer({min: 0, max: 600}),
        fc.integer({min: 1, max: 600}),
        fc.subarray([0, 1, 2, 3]),
        async (rows, from, length, codes) => {
          const memory = new MemoryBackend()
          const events = rows.map((row) => ({timestampMs: H(10, 0) + row.minute * 60_000, deviceIp: `10.0.0.${row.device}`, errorCode: row.code}))
          await memory.add(events)
          const query = {sinceMs: H(10) + from * 60_000, untilMs: H(10) + (from + length) * 60_000, errorCodes: codes}
          const expected = new Set(events.filter((event) => matchesQuery(event.timestampMs, event.errorCode, query)).map((event) => event.deviceIp))
          expect(await memory.countUnique(query)).to.equal(expected.size)
        },
      ),
    )
  })
})

describe('ClickHouse query plans', () => {
  const tables = {events: '`db`.`events`', devices: '`db`.`events_devices`', hourly: '`db`.`events_hourly`'}

  it('counts whole hours from the hourly rollup and the partial ends from the events', () => {
    expect(planRange(H(12, 30), H(15, 10), true)).to.deep.equal({
      rollupHours: {sinceMs: H(13), untilMs: H(15)},
      raw: [
        {sinceMs: H(12, 30), untilMs: H(13)},
        {sinceMs: H(15), untilMs: H(15, 10)},
      ],
    })
    expect(planRange(H(12), H(14), true)).to.deep.equal({rollupHours: {sinceMs: H(12), untilMs: H(14)}, raw: []})
    expect(planRange(H(12, 30), H(13, 10), true)).to.deep.equal({raw: [{sinceMs: H(12, 30), untilMs: H(13, 10)}]})
    expect(planRange(H(12), H(14), false)).to.deep.equal({raw: [{sinceMs: H(12), untilMs: H(14)}]})
  })

  it('leaves hours outside DateTime (before 1970, after 2106) and open ends to the events table', () => {
    expect(planRange(-5 * HOUR_MS - 7, 2 * HOUR_MS, true)).to.deep.equal({
      rollupHours: {sinceMs: 0, untilMs: 2 * HOUR_MS},
      raw: [{sinceMs: -5 * HOUR_MS - 7, untilMs: 0}],
    })
    const open = planRange(undefined, H(14), true)
    expect(open.rollupHours).to.deep.equal({sinceMs: 0, untilMs: H(14)})
    expect(open.raw).to.deep.equal([{sinceMs: undefined, untilMs: 0}])
    const end = planRange(H(14), undefined, true)
    expect(end.raw).to.have.length(1)
    expect(end.raw[0].untilMs).to.equal(undefined)
    expect(end.raw[0].sinceMs).to.be.greaterThan(Date.UTC(2106, 0, 1))
  })

  it('selects raw events exactly, with DateTime64 literals only for bounds from 1970 to 2106', () => {
    expect(rawRangeConditions('epoch-ms', 1500, 4500)).to.deep.equal(['timestamp_ms >= 1500', 'timestamp_ms < 4500'])
    expect(rawRangeConditions('epoch-ms', -1500, 4500)).to.deep.equal(['timestamp_ms >= -1500', 'timestamp_ms < 4500'])
    expect(rawRangeConditions('epoch-ms', undefined, 4500)).to.deep.equal(['timestamp_ms < 4500'])
    expect(rawRangeConditions('datetime64', H(12), H(13))).to.deep.equal([
      "timestamp >= toDateTime64('2024-09-18 12:00:00.000', 3, 'UTC')",
      "timestamp < toDateTime64('2024-09-18 13:00:00.000', 3, 'UTC')",
    ])
    expect(rawRangeConditions('datetime64', Date.UTC(1800, 0, 1), Date.UTC(2200, 0, 1))).to.deep.equal([
      `toUnixTimestamp64Milli(timestamp) >= ${Date.UTC(1800, 0, 1)}`,
      `toUnixTimestamp64Milli(timestamp) < ${Date.UTC(2200, 0, 1)}`,
    ])
  })

  it('reads the all-time count from the devices rollup, and both partial ends in one parenthesised pass', () => {
    expect(countUniqueSql(tables, 'epoch-ms', {errorCodes: []}, true)).to.equal('SELECT uniqExact(device_ip) AS count FROM `db`.`events_devices`')
    expect(countUniqueSql(tables, 'epoch-ms', {errorCodes: []}, false)).to.equal('SELECT uniqExact(device_ip) AS count FROM `db`.`events`')
    // Error codes of all time: the hourly rollup for the hours it holds, the events for the rest.
    expect(countUniqueSql(tables, 'epoch-ms', {errorCodes: [3, -1]}, true)).to.equal(
      'SELECT uniqExact(device_ip) AS count FROM (\n' +
        '  SELECT device_ip FROM `db`.`events_hourly` WHERE hour >= toDateTime(0) AND hour < toDateTime(4294965600) AND error_code IN (3, -1)\n' +
        '  UNION ALL\n' +
        `  SELECT device_ip FROM \`db\`.\`events\` WHERE ((timestamp_ms < 0) OR (timestamp_ms >= ${ROLLUP_END_MS})) AND error_code IN (3, -1)\n` +
        ')',
    )
    const sql = countUniqueSql(tables, 'epoch-ms', {sinceMs: H(12, 30), untilMs: H(15, 10), errorCodes: [9]}, true)
    expect(sql).to.include('UNION ALL').and.include('FROM `db`.`events_hourly` WHERE hour >= toDateTime(')
    expect(sql).to.match(/WHERE \(\(timestamp_ms >= \d+ AND .*\) OR \(timestamp_ms >= .*\)\) AND error_code IN \(9\)/)
    expect(countSeriesSql(tables, 'epoch-ms', {sinceMs: H(12), untilMs: H(14), errorCodes: []}, 'day', true)).to.include(
      'toInt64(intDiv(toUInt32(hour), 86400) * 86400000) AS bucket',
    )
  })
})
