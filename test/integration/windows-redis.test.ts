import {expect} from 'chai'
import {createClient} from '@redis/client'
import {RedisBackend, SCRIPT_MAX_DEVICES} from '../../src/backends/redis/redis-backend.js'
import {RedisKeys} from '../../src/backends/redis/keys.js'
import type {BackendOptions} from '../../src/backends/registry.js'
import {HOUR_MS, bucketStart} from '../../src/query/count-query.js'
import {runIpc} from '../support/cli.js'
import {redisUrl, uniqueName} from '../support/services.js'
import {CLEAN_ENV, deviceIp, exactCount, exactSeries, hourRounded, iso, windowEvents, withinHllError} from './windows-fixture.js'

function options(key: string, overrides: Partial<BackendOptions> = {}): BackendOptions {
  return {
    redisUrl: redisUrl(),
    redisKey: key,
    clickhouseUrl: 'http://unused:1',
    clickhouseUser: 'default',
    clickhousePassword: '',
    clickhouseDatabase: 'unused',
    requestTimeoutMs: 5000,
    ...overrides,
  }
}

/** Deletes a base key and every bucket key of it. */
async function deleteKeys(key: string): Promise<void> {
  const client = createClient({url: redisUrl()})
  await client.connect()
  try {
    const found: string[] = [key]
    for await (const keys of client.scanIterator({MATCH: `${new RedisKeys(key).prefix.replace(/[{}*?[\]\\]/g, '\\$&')}*`, COUNT: 1000})) found.push(...keys)
    await client.del(found)
  } finally {
    await client.close()
  }
}

describe('time windows and error codes on redis', () => {
  const key = uniqueName('ipc_test_windows')
  const {baseMs, events} = windowEvents()
  const at = (hour: number, minute = 0) => baseMs + hour * HOUR_MS + minute * 60_000

  const count = (...extra: string[]) => runIpc(['count', '--backend', 'redis', '--redis-url', redisUrl(), '--redis-key', key, ...extra], {env: CLEAN_ENV})

  before(async () => {
    const redis = new RedisBackend(options(key))
    await redis.connect()
    // Several calls, as a consumer makes them.
    for (let start = 0; start < events.length; start += 250) await redis.add(events.slice(start, start + 250))
    await redis.close()
  })

  after(async () => {
    await deleteKeys(key)
  })

  it('estimates a range of whole hours within the HyperLogLog error', async () => {
    const query = {sinceMs: at(1), untilMs: at(4), errorCodes: []}
    const result = await count('--since', iso(at(1)), '--until', iso(at(4)))
    expect(result.code, result.stderr).to.equal(0)
    const estimate = Number(result.stdout)
    expect(result.stdout).to.match(/^\d+\n$/)
    expect(withinHllError(estimate, exactCount(events, query)), `${estimate} vs ${exactCount(events, query)}`).to.equal(true)
  })

  it('widens a range that does not align to hours outward to whole hours', async () => {
    const query = {sinceMs: at(1, 17), untilMs: at(3, 41), errorCodes: []}
    const widened = exactCount(events, hourRounded(query))
    expect(widened).to.be.greaterThan(exactCount(events, query) + 50)
    const result = await count('--since', iso(query.sinceMs), '--until', iso(query.untilMs), '--json')
    const parsed = JSON.parse(result.stdout) as Record<string, unknown>
    expect(parsed).to.deep.include({backend: 'redis', exact: false, since: iso(query.sinceMs), until: iso(query.untilMs), error_codes: []})
    expect(withinHllError(parsed.unique_device_ip_count as number, widened), `${parsed.unique_device_ip_count} vs ${widened}`).to.equal(true)
  })

  it('estimates devices per error code, all-time and within hours', async () => {
    for (const codes of [[9], [1, 2], [-7, 0]]) {
      const estimate = Number((await count(...codes.map((code) => `--error-code=${code}`))).stdout)
      const exact = exactCount(events, {errorCodes: codes})
      expect(withinHllError(estimate, exact), `codes ${codes}: ${estimate} vs ${exact}`).to.equal(true)
    }
    const query = {sinceMs: at(2), untilMs: at(5), errorCodes: [3, 9]}
    const estimate = Number((await count('--since', iso(at(2)), '--until', iso(at(5)), '--error-code', '3,9')).stdout)
    expect(withinHllError(estimate, exactCount(events, query)), `${estimate} vs ${exactCount(events, query)}`).to.equal(true)
  })

  it('prints a series per hour and per day, each bucket within the HyperLogLog error', async () => {
    const query = {sinceMs: at(0), untilMs: at(6), errorCodes: [4]}
    const result = await count('--since', iso(query.sinceMs), '--until', iso(query.untilMs), '--error-code', '4', '--by', 'hour', '--json')
    const parsed = JSON.parse(result.stdout) as {series: Array<{bucket: string; count: number}>}
    const expected = exactSeries(events, query, 'hour', true)
    expect(parsed.series.map((point) => point.bucket)).to.deep.equal(expected.map((point) => iso(point.startMs)))
    parsed.series.forEach((point, index) =>
      expect(withinHllError(point.count, expected[index].count), `${point.bucket}: ${point.count} vs ${expected[index].count}`).to.equal(true),
    )

    const day = {sinceMs: at(0, 30), untilMs: at(5, 30), errorCodes: []}
    const plain = await count('--since', iso(day.sinceMs), '--until', iso(day.untilMs), '--by', 'day')
    const lines = plain.stdout.trimEnd().split('\n')
    const expectedDays = exactSeries(events, day, 'day', true)
    expect(lines.map((line) => line.split(' ')[0])).to.deep.equal(expectedDays.map((point) => iso(point.startMs)))
    lines.forEach((line, index) => expect(withinHllError(Number(line.split(' ')[1]), expectedDays[index].count), line).to.equal(true))
  })

  it('counts through a temporary merged key when a range has more keys than one PFCOUNT takes', async () => {
    const redis = new RedisBackend(options(key))
    try {
      // 50 days x 256 error codes: 307,200 hourly keys, PFMERGEd in chunks.
      const allCodes = Array.from({length: 256}, (_, index) => index - 128)
      const query = {sinceMs: at(6) - 50 * 24 * HOUR_MS, untilMs: at(6), errorCodes: allCodes}
      const estimate = await redis.countUnique(query)
      expect(withinHllError(estimate, exactCount(events, query)), `${estimate}`).to.equal(true)
    } finally {
      await redis.close()
    }
  })

  it('writes each batch with one script call, loading the script again after the server forgot it', async () => {
    const scriptKey = uniqueName('ipc_test_script')
    const redis = new RedisBackend(options(scriptKey))
    const client = createClient({url: redisUrl()})
    await client.connect()
    try {
      await client.scriptFlush()
      const hour = bucketStart(Date.now(), 'hour')
      await redis.add([
        {timestampMs: hour + 5, deviceIp: deviceIp(1), errorCode: 3},
        {timestampMs: hour + 6, deviceIp: deviceIp(2), errorCode: -3},
      ])
      await redis.flush()
      const keys = new RedisKeys(scriptKey)
      expect(await client.pfCount(scriptKey)).to.equal(2)
      expect(await client.pfCount(keys.hour(hour))).to.equal(2)
      expect(await client.pfCount([keys.errorCode(3), keys.hourErrorCode(hour, -3)])).to.equal(2)
      expect(await client.pfCount(keys.hourErrorCode(hour, 3))).to.equal(1)
    } finally {
      await redis.close()
      await client.close()
      await deleteKeys(scriptKey)
    }
  })

  it('splits an add() with more devices than one script call takes into several calls', async () => {
    const bigKey = uniqueName('ipc_test_big')
    const redis = new RedisBackend(options(bigKey))
    try {
      const hour = bucketStart(Date.now(), 'hour')
      const events = Array.from({length: 2 * SCRIPT_MAX_DEVICES + 123}, (_, n) => ({
        timestampMs: hour + (n % 1000),
        deviceIp: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
        errorCode: n % 2,
      }))
      await redis.add(events)
      await redis.flush()
      for (const estimate of [await redis.count(), await redis.countUnique({sinceMs: hour, untilMs: hour + HOUR_MS, errorCodes: [0, 1]})]) {
        expect(Math.abs(estimate - events.length) / events.length).to.be.at.most(0.02)
      }
    } finally {
      await redis.close()
      await deleteKeys(bigKey)
    }
  })

  it('refuses a range without a start with exit code 2', async () => {
    const result = await count('--until', iso(at(3)))
    expect(result.code).to.equal(2)
    expect(result.stdout).to.equal('')
    expect(result.stderr).to.include('give --since')
  })

  it('lets hourly keys expire --redis-bucket-ttl after their hour, and skips hours already past it', async () => {
    const ttlKey = uniqueName('ipc_test_ttl')
    const redis = new RedisBackend(options(ttlKey, {redisBucketTtlMs: 2 * HOUR_MS}))
    const keep = new RedisBackend(options(`${ttlKey}_keep`, {redisBucketTtlMs: 0}))
    const client = createClient({url: redisUrl()})
    await client.connect()
    try {
      const recentHour = bucketStart(Date.now(), 'hour') - HOUR_MS
      const oldHour = recentHour - 5 * HOUR_MS
      const sample = [
        {timestampMs: recentHour + 1000, deviceIp: deviceIp(1), errorCode: 2},
        {timestampMs: oldHour + 1000, deviceIp: deviceIp(2), errorCode: 2},
      ]
      await redis.add(sample)
      await keep.add(sample)
      await Promise.all([redis.flush(), keep.flush()])
      const keys = new RedisKeys(ttlKey)
      const expiresAt = (recentHour + HOUR_MS + 2 * HOUR_MS) / 1000
      const ttl = await client.ttl(keys.hour(recentHour))
      expect(Math.round(Date.now() / 1000) + ttl).to.be.within(expiresAt - 2, expiresAt + 2)
      expect(await client.ttl(keys.hourErrorCode(recentHour, 2))).to.equal(ttl)
      expect(await client.exists([keys.hour(oldHour), keys.hourErrorCode(oldHour, 2)])).to.equal(0)
      // The all-time and error-code keys never expire.
      expect(await client.ttl(ttlKey)).to.equal(-1)
      expect(await client.pfCount(keys.errorCode(2))).to.equal(2)
      const kept = new RedisKeys(`${ttlKey}_keep`)
      expect(await client.ttl(kept.hour(oldHour))).to.equal(-1)
      expect(await keep.countUnique({sinceMs: oldHour, untilMs: recentHour + HOUR_MS, errorCodes: []})).to.equal(2)
      expect(await redis.countUnique({sinceMs: oldHour, untilMs: recentHour + HOUR_MS, errorCodes: []})).to.equal(1)
    } finally {
      await Promise.all([redis.close(), keep.close()])
      await client.close()
      await deleteKeys(ttlKey)
      await deleteKeys(`${ttlKey}_keep`)
    }
  })
})
