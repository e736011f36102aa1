import {expect} from 'chai'
import {createClient as createRedisClient} from '@redis/client'
import type {DeviceEvent} from '../../src/backends/backend.js'
import {ClickHouseBackend} from '../../src/backends/clickhouse/clickhouse-backend.js'
import type {BackendOptions} from '../../src/backends/registry.js'
import {RedisBackend} from '../../src/backends/redis/redis-backend.js'
import {type CliResult, runIpc} from '../support/cli.js'
import {serviceUrls, uniqueName} from '../support/services.js'
import {ClickHouseProbe, describeRun, kafka} from '../support/runs.js'

/**
 * Names from flags reach ClickHouse and Redis only after validation (identifiers, keys), and
 * values only as data: hostile names are refused with a usage error before anything connects, and
 * hostile values are stored byte for byte.
 */

const HOSTILE_DATABASES = [
  'x`; DROP TABLE y; --',
  "ipc'; DROP DATABASE ipc; --",
  'ipc`.`events',
  'ipc.events',
  'a b',
  '../../etc/passwd',
  '1abc',
  'ipc\nDROP',
  'x'.repeat(129),
]
const HOSTILE_REDIS_KEYS = ['has space', 'key\r\nFLUSHALL', 'tab\tkey', 'ключ', 'x'.repeat(513)]

/** Values that would break a query built by string concatenation, or a text protocol. */
const HOSTILE_VALUES = [
  "'); DROP TABLE events; --",
  "' OR '1'='1",
  'x`; DROP TABLE y; --',
  '"quoted" and \'single\' and `back`',
  'back\\slash \\\' \\" \\\\ \\N',
  'line\nbreak\r\ttab',
  'nul\u0000byte',
  '{"json": [1, 2]}',
  '$1 %s {{timestamp}} ${device_ip}',
  '1,2,3\n4,5,6',
  'emoji 🙂 and ü',
  '*3\r\n$3\r\nDEL\r\n$3\r\nkey\r\n',
]

function expectUsageError(result: CliResult, command: string, what: RegExp): void {
  expect(result.code, describeRun(result)).to.equal(2)
  expect(result.stdout, 'nothing on stdout').to.equal('')
  const lines = result.stderr.trim().split('\n')
  expect(lines, result.stderr).to.have.length(1)
  expect(lines[0]).to.match(new RegExp(`^ipc ${command}: `))
  expect(lines[0]).to.match(what)
}

describe('reliability: injection safety', function () {
  this.timeout(180_000)

  const sentinelDatabase = uniqueName('ipc_sentinel')
  const sentinelKey = uniqueName('ipc:sentinel')
  let probe: ClickHouseProbe

  async function databases(): Promise<string[]> {
    return (await probe.query<{name: string}>('SELECT name FROM system.databases ORDER BY name')).map((row) => row.name)
  }

  async function sentinelRows(): Promise<number> {
    const [row] = await probe.query<{n: string}>(`SELECT count() AS n FROM \`${sentinelDatabase}\`.y`)
    return Number(row.n)
  }

  const redisClient = () => createRedisClient({url: serviceUrls().redisUrl})

  async function withRedis<T>(use: (client: ReturnType<typeof redisClient>) => Promise<T>): Promise<T> {
    const client = redisClient()
    await client.connect()
    try {
      return await use(client)
    } finally {
      await client.close()
    }
  }

  before(async () => {
    probe = new ClickHouseProbe(sentinelDatabase)
    await probe.client.command({query: `CREATE DATABASE \`${sentinelDatabase}\``})
    await probe.client.command({query: `CREATE TABLE \`${sentinelDatabase}\`.y (v String) ENGINE = MergeTree ORDER BY v`})
    await probe.client.command({query: `INSERT INTO \`${sentinelDatabase}\`.y VALUES ('a'), ('b'), ('c')`})
    await withRedis((client) => client.set(sentinelKey, 'keep'))
  })

  after(async () => {
    await probe.client.command({query: `DROP DATABASE IF EXISTS \`${sentinelDatabase}\``})
    await probe.close()
    await withRedis((client) => client.del(sentinelKey))
  })

  it('ipc consume and ipc count refuse hostile --clickhouse-database values with a usage error and touch nothing', async () => {
    const before = await databases()
    const topic = uniqueName('never_created')
    const results = await Promise.all(
      HOSTILE_DATABASES.flatMap((database) => [
        runIpc(['consume', '--topic', topic, '--backend', 'clickhouse', '--clickhouse-database', database, '--group', uniqueName('g'), '--until-idle', '1s']),
        runIpc(['consume', '--topic', topic, '--backend', 'clickhouse', '--clickhouse-database', database, '--group', uniqueName('g'), '--json']),
        runIpc(['count', '--backend', 'clickhouse', '--clickhouse-database', database]),
      ]),
    )
    for (const [index, result] of results.entries()) {
      expectUsageError(result, index % 3 === 2 ? 'count' : 'consume', /invalid ClickHouse database name/)
    }
    expect(await databases(), 'no database created or dropped').to.deep.equal(before)
    expect(await sentinelRows()).to.equal(3)
    const admin = kafka().admin()
    await admin.connect()
    try {
      expect(await admin.listTopics(), 'the consumer never reached Kafka').to.not.include(topic)
    } finally {
      await admin.disconnect()
    }
  })

  it('ipc consume and ipc count refuse hostile --redis-key values with a usage error and touch nothing', async () => {
    const keysBefore = await withRedis((client) => client.dbSize())
    const results = await Promise.all(
      HOSTILE_REDIS_KEYS.flatMap((key) => [
        runIpc(['consume', '--topic', uniqueName('never_created'), '--backend', 'redis', '--redis-key', key, '--group', uniqueName('g'), '--until-idle', '1s']),
        runIpc(['count', '--backend', 'redis', '--redis-key', key]),
      ]),
    )
    for (const [index, result] of results.entries()) expectUsageError(result, index % 2 === 1 ? 'count' : 'consume', /invalid Redis key/)
    await withRedis(async (client) => {
      expect(await client.get(sentinelKey)).to.equal('keep')
      expect(await client.dbSize(), 'no key created or deleted').to.equal(keysBefore)
    })
  })

  function backendOptions(overrides: Partial<BackendOptions>): BackendOptions {
    const {redisUrl, clickhouseUrl} = serviceUrls()
    return {
      redisUrl,
      redisKey: uniqueName('ipc:values'),
      clickhouseUrl,
      clickhouseUser: 'default',
      clickhousePassword: '',
      clickhouseDatabase: uniqueName('ipc_values'),
      ...overrides,
    }
  }

  const hostileEvents: DeviceEvent[] = HOSTILE_VALUES.map((deviceIp, index) => ({
    timestampMs: Date.UTC(2021, 11, 3, 16, 15, 30, index),
    deviceIp,
    errorCode: index - 6,
  }))

  it('clickhouse stores values full of quotes, backslashes and SQL byte for byte, as data', async () => {
    // The validator never lets such a device_ip through; the backend must still treat it as data.
    const database = uniqueName('ipc_values')
    const clickhouse = new ClickHouseBackend(backendOptions({clickhouseDatabase: database, batchSize: 1000}))
    try {
      await clickhouse.connect()
      const receipt = await clickhouse.add(hostileEvents)
      await clickhouse.flush()
      await receipt.durable
      const stored = await clickhouse.readEvents()
      expect(stored).to.deep.equal(hostileEvents)
      expect(await clickhouse.count()).to.equal(HOSTILE_VALUES.length)
    } finally {
      await clickhouse.close()
      await probe.client.command({query: `DROP DATABASE IF EXISTS \`${database}\``})
    }
    expect(await sentinelRows(), 'nothing else touched').to.equal(3)
  })

  it('redis adds values full of protocol and shell syntax as plain elements', async () => {
    const redis = new RedisBackend(backendOptions({}))
    try {
      await redis.connect()
      await (
        await redis.add(hostileEvents)
      ).durable
      await (
        await redis.add(hostileEvents)
      ).durable
      expect(await redis.count()).to.equal(HOSTILE_VALUES.length)
      await withRedis(async (client) => {
        expect(await client.get(sentinelKey)).to.equal('keep')
        expect(await client.exists('key')).to.equal(0)
        expect(await client.pfCount(redis.key)).to.equal(HOSTILE_VALUES.length)
      })
    } finally {
      await redis.close()
      await withRedis(async (client) => {
        const keys = await client.keys(`*${redis.key}*`)
        if (keys.length > 0) await client.del(keys)
      })
    }
  })
})
