import {type ClickHouseClient, createClient} from '@clickhouse/client'
import {expect} from 'chai'
import {BackendError, type DeviceEvent} from '../../src/backends/backend.js'
import {ClickHouseBackend, supportsDateTime64} from '../../src/backends/clickhouse/clickhouse-backend.js'
import {createTableSql, formatDateTime64} from '../../src/backends/clickhouse/schema.js'
import {escapeTsv, LocalSequence, toTsvRow} from '../../src/backends/clickhouse/tsv-batch.js'
import type {BackendOptions} from '../../src/backends/registry.js'
import {IdentifierError} from '../../src/backends/identifiers.js'
import {waitFor} from '../support/cli.js'
import {clickhouseUrl, uniqueName} from '../support/services.js'
import {closedPort, CuttableLink} from '../support/tcp-proxy.js'

const DEC_3_2021_161530_123 = Date.UTC(2021, 11, 3, 16, 15, 30, 123)

function events(from: number, to: number, timestampMs = DEC_3_2021_161530_123): DeviceEvent[] {
  const list: DeviceEvent[] = []
  for (let n = from; n < to; n++) list.push({timestampMs: timestampMs + n, deviceIp: `10.0.${(n >> 8) & 255}.${n & 255}`, errorCode: (n % 256) - 128})
  return list
}

describe('ClickHouse backend helpers', () => {
  it('knows which server versions have DateTime64', () => {
    expect(['18.16.1', '19.17.4.11', '20.0.1'].map(supportsDateTime64)).to.deep.equal([false, false, false])
    expect(['20.1.2.4', '21.8.15.7', '24.3.1.2672'].map(supportsDateTime64)).to.deep.equal([true, true, true])
    expect(supportsDateTime64('unknown')).to.equal(false)
  })

  it('writes millisecond timestamps in the form DateTime64(3) reads, in UTC', () => {
    expect(formatDateTime64(DEC_3_2021_161530_123)).to.equal('2021-12-03 16:15:30.123')
    expect(formatDateTime64(Date.UTC(1999, 0, 1, 0, 0, 0, 7))).to.equal('1999-01-01 00:00:00.007')
  })

  it('builds TabSeparated rows per layout, escaping what would end a field or a row', () => {
    const event = {timestampMs: DEC_3_2021_161530_123, deviceIp: '10.0.0.1', errorCode: -3}
    expect(toTsvRow(event, 'epoch-ms')).to.equal(`${DEC_3_2021_161530_123}\t10.0.0.1\t-3\n`)
    expect(toTsvRow(event, 'datetime64')).to.equal('2021-12-03 16:15:30.123\t10.0.0.1\t-3\n')
    expect(escapeTsv('a\tb\nc\rd\\e')).to.equal('a\\tb\\nc\\rd\\\\e')
  })

  it('adds the Kafka coordinates on the keyed layout, and a writer-unique sequence for events without them', () => {
    const event = {timestampMs: DEC_3_2021_161530_123, deviceIp: '10.0.0.1', errorCode: -3}
    const local = new LocalSequence()
    const key = {keyed: true, local} as const
    expect(toTsvRow({...event, source: {topic: 'ev\tents', partition: 7, offset: '9007199254740993'}}, 'epoch-ms', key)).to.equal(
      `${DEC_3_2021_161530_123}\t10.0.0.1\t-3\tev\\tents\t7\t9007199254740993\n`,
    )
    expect(local.partition).to.be.below(0)
    expect([toTsvRow(event, 'epoch-ms', key), toTsvRow(event, 'epoch-ms', key)]).to.deep.equal([
      `${DEC_3_2021_161530_123}\t10.0.0.1\t-3\t\t${local.partition}\t0\n`,
      `${DEC_3_2021_161530_123}\t10.0.0.1\t-3\t\t${local.partition}\t1\n`,
    ])
  })

  it('creates a ReplacingMergeTree keyed by the Kafka coordinates for both layouts', () => {
    for (const layout of ['epoch-ms', 'datetime64'] as const) {
      const sql = createTableSql('`db`.`events`', layout)
      expect(sql)
        .to.include('CREATE TABLE IF NOT EXISTS `db`.`events`')
        .and.include('kafka_topic String,\n  kafka_partition Int32,\n  kafka_offset Int64')
        .and.include('ENGINE = ReplacingMergeTree')
        .and.include('ORDER BY (kafka_topic, kafka_partition, kafka_offset)')
    }
    expect(createTableSql('`db`.`events`', 'datetime64')).to.include("timestamp DateTime64(3, 'UTC')")
    expect(createTableSql('`db`.`events`', 'epoch-ms')).to.include('timestamp_ms Int64')
  })
})

describe('ClickHouseBackend (real ClickHouse)', () => {
  let admin: ClickHouseClient
  let database: string
  const opened: ClickHouseBackend[] = []

  function backend(overrides: Partial<BackendOptions> = {}): ClickHouseBackend {
    const created = new ClickHouseBackend({
      redisUrl: '',
      redisKey: 'unused',
      clickhouseUrl: clickhouseUrl(),
      clickhouseUser: 'default',
      clickhousePassword: '',
      clickhouseDatabase: database,
      requestTimeoutMs: 5000,
      ...overrides,
    })
    opened.push(created)
    return created
  }

  async function rowsInTable(table = 'events'): Promise<number> {
    const result = await admin.query({query: `SELECT count() AS n FROM \`${database}\`.\`${table}\``, format: 'JSONEachRow'})
    const [row] = await result.json<{n: string}>()
    return Number(row.n)
  }

  before(() => {
    admin = createClient({url: clickhouseUrl(), request_timeout: 10_000})
  })

  after(async () => {
    await admin.close()
  })

  beforeEach(() => {
    database = uniqueName('ipc_test')
  })

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((created) => created.close().catch(() => {})))
    await admin.command({query: `DROP DATABASE IF EXISTS \`${database}\``})
  })

  it('creates the database and the events table, choosing the timestamp layout from the server version', async () => {
    const clickhouse = backend()
    await clickhouse.connect()
    const exists = await admin.query({query: `EXISTS TABLE \`${database}\`.\`events\``, format: 'JSONEachRow'})
    expect(Object.values((await exists.json<Record<string, unknown>>())[0]).map(Number)).to.deep.equal([1])
    const version = await admin.query({query: 'SELECT version() AS version', format: 'JSONEachRow'})
    const [{version: serverVersion}] = await version.json<{version: string}>()
    expect(clickhouse.timestampLayout).to.equal(supportsDateTime64(serverVersion) ? 'datetime64' : 'epoch-ms')
    // Connecting again (another process, a restart) keeps the table.
    await clickhouse.add(events(0, 3))
    await clickhouse.flush()
    const again = backend()
    await again.connect()
    expect(await again.rowCount()).to.equal(3)
  })

  it('keeps fewer than batchSize events buffered until the flush interval, then inserts them without further calls', async () => {
    const clickhouse = backend({batchSize: 1000, flushIntervalMs: 1000})
    await clickhouse.connect()
    let durable = false
    const receipt = await clickhouse.add(events(0, 10))
    void receipt.durable.then(() => (durable = true))
    expect(await rowsInTable()).to.equal(0)
    expect(durable).to.equal(false)
    expect(clickhouse.bufferedRows).to.equal(10)
    await waitFor('the timed insert', async () => ((await rowsInTable()) === 10 ? true : undefined), 20_000)
    await receipt.durable
    expect(clickhouse.bufferedRows).to.equal(0)
  })

  it('inserts as soon as batchSize events are buffered, without waiting for the timer', async () => {
    const clickhouse = backend({batchSize: 100, flushIntervalMs: 600_000})
    await clickhouse.connect()
    let durable = false
    const receipt = await clickhouse.add(events(0, 250))
    void receipt.durable.then(() => (durable = true))
    await waitFor('two full batches', async () => ((await rowsInTable()) === 200 ? true : undefined), 20_000)
    expect(clickhouse.bufferedRows).to.equal(50)
    expect(durable).to.equal(false)
    await clickhouse.flush()
    await receipt.durable
    expect(await rowsInTable()).to.equal(250)
  })

  it('resolves each receipt once the insert holding its events succeeded, in order', async () => {
    const clickhouse = backend({batchSize: 50, flushIntervalMs: 600_000})
    await clickhouse.connect()
    const receipts = []
    for (let call = 0; call < 9; call++) receipts.push(await clickhouse.add(events(call * 20, call * 20 + 20)))
    // 180 events: three full batches of 50 are written; the last 30 wait for flush().
    await Promise.all(receipts.slice(0, 7).map((receipt) => receipt.durable))
    expect(await rowsInTable()).to.equal(150)
    await clickhouse.flush()
    await Promise.all(receipts.map((receipt) => receipt.durable))
    expect(await rowsInTable()).to.equal(180)
  })

  it('counts distinct device IPs exactly, whatever the duplicates', async () => {
    const clickhouse = backend({batchSize: 2000})
    await clickhouse.connect()
    await clickhouse.add(events(0, 1234))
    await clickhouse.add(events(0, 1234))
    await clickhouse.add(events(600, 700))
    await clickhouse.flush()
    expect(await clickhouse.count()).to.equal(1234)
    expect(await clickhouse.rowCount()).to.equal(2568)
    expect(clickhouse.exact).to.equal(true)
  })

  it('keeps the millisecond of the timestamp, error codes and odd strings exactly', async () => {
    const clickhouse = backend()
    await clickhouse.connect()
    const stored: DeviceEvent[] = [
      {timestampMs: DEC_3_2021_161530_123, deviceIp: '192.0.2.1', errorCode: -128},
      {timestampMs: DEC_3_2021_161530_123 + 1, deviceIp: "x'); DROP DATABASE `ipc`; --", errorCode: 127},
      {timestampMs: DEC_3_2021_161530_123 + 2, deviceIp: 'quote " backslash \\ tab \t newline \n', errorCode: 0},
    ]
    await clickhouse.add(stored)
    await clickhouse.flush()
    expect(await clickhouse.readEvents()).to.deep.equal(stored)
    if (clickhouse.timestampLayout === 'epoch-ms') {
      const result = await admin.query({
        query: `SELECT timestamp_ms, toString(timestamp) AS second FROM \`${database}\`.\`events\` ORDER BY timestamp_ms LIMIT 1`,
        format: 'JSONEachRow',
      })
      expect(await result.json()).to.deep.equal([{timestamp_ms: String(DEC_3_2021_161530_123), second: '2021-12-03 16:15:30'}])
    } else {
      const result = await admin.query({
        query: `SELECT toString(timestamp) AS timestamp FROM \`${database}\`.\`events\` ORDER BY timestamp LIMIT 1`,
        format: 'JSONEachRow',
      })
      expect(await result.json()).to.deep.equal([{timestamp: '2021-12-03 16:15:30.123'}])
    }
  })

  it('uses the table name it was given', async () => {
    const clickhouse = backend({clickhouseTable: 'device_events'})
    await clickhouse.connect()
    await clickhouse.add(events(0, 4))
    await clickhouse.flush()
    expect(await rowsInTable('device_events')).to.equal(4)
  })

  it('close() writes what is still buffered', async () => {
    const clickhouse = backend({flushIntervalMs: 600_000})
    await clickhouse.connect()
    await clickhouse.add(events(0, 7))
    await clickhouse.close()
    expect(await rowsInTable()).to.equal(7)
    const failure = await clickhouse.add(events(7, 8)).catch((error: unknown) => error)
    expect(failure).to.be.instanceOf(BackendError).with.property('message').that.includes('closed')
  })

  it('rejects database and table names that are not plain identifiers', () => {
    for (const name of ['ipc; DROP TABLE x', 'a`b', '1db', 'my-db', '']) {
      expect(() => backend({clickhouseDatabase: name}), name).to.throw(IdentifierError, 'database')
      expect(() => backend({clickhouseTable: name}), name).to.throw(IdentifierError, 'table')
    }
  })

  it('fails connect() and count() with a retriable BackendError naming the URL, without the password, when ClickHouse is unreachable', async function () {
    this.timeout(15_000)
    const port = await closedPort()
    const clickhouse = backend({clickhouseUrl: `http://default:secret@127.0.0.1:${port}`})
    for (const operation of [() => clickhouse.connect(), () => clickhouse.count()]) {
      const failure = await operation().catch((error: unknown) => error)
      expect(failure).to.be.instanceOf(BackendError)
      expect((failure as BackendError).message)
        .to.include(`http://127.0.0.1:${port}`)
        .and.not.include('secret')
      expect((failure as BackendError).retriable, 'a ClickHouse that is down may come back').to.equal(true)
    }
  })

  it('refuses a table that exists with other columns', async () => {
    await admin.command({query: `CREATE DATABASE \`${database}\``})
    await admin.command({query: `CREATE TABLE \`${database}\`.\`events\` (ip String) ENGINE = MergeTree ORDER BY ip`})
    const failure = await backend()
      .connect()
      .catch((error: unknown) => error)
    expect(failure).to.be.instanceOf(BackendError).with.property('message').that.includes('other columns')
    expect((failure as BackendError).retriable, 'the table will not change by itself').to.equal(false)
  })

  describe('while ClickHouse is unreachable during consumption', () => {
    let link: CuttableLink

    beforeEach(async () => {
      const target = new URL(clickhouseUrl())
      link = await new CuttableLink(target.hostname, Number(target.port || 8123)).start()
    })

    afterEach(async () => {
      await link.stop()
    })

    function linkedUrl(): string {
      const target = new URL(clickhouseUrl())
      target.port = String(link.port)
      return target.toString()
    }

    it('keeps the failed batch, retries it with backoff, holds back add() when both buffers are full, and writes everything once back', async () => {
      const failures: BackendError[] = []
      const clickhouse = backend({clickhouseUrl: linkedUrl(), batchSize: 20, flushIntervalMs: 600_000})
      clickhouse.on('write-failed', (error) => failures.push(error))
      await clickhouse.connect()
      link.cut()
      const first = await clickhouse.add(events(0, 20)) // full: its insert starts and fails
      const second = await clickhouse.add(events(20, 40)) // fills the next buffer
      let thirdAccepted = false
      const third = clickhouse.add(events(40, 45)).then((receipt) => {
        thirdAccepted = true
        return receipt
      })
      await waitFor('two reported insert failures', () => (failures.length >= 2 ? true : undefined), 20_000)
      expect(thirdAccepted).to.equal(false)
      expect(failures[0].message).to.include(`127.0.0.1:${link.port}`).and.include('retrying')
      link.restore()
      await first.durable
      await second.durable
      await clickhouse.flush()
      await (
        await third
      ).durable
      expect(await clickhouse.count()).to.equal(45)
    })

    it('gives up once maxRetryTimeMs has passed: flush() and later add() calls reject', async () => {
      const clickhouse = backend({clickhouseUrl: linkedUrl(), maxRetryTimeMs: 500, flushIntervalMs: 600_000})
      await clickhouse.connect()
      link.cut()
      await clickhouse.add(events(0, 5))
      const failure = await clickhouse.flush().catch((error: unknown) => error)
      expect(failure).to.be.instanceOf(BackendError).with.property('message').that.includes('gave up')
      expect(await clickhouse.add(events(5, 6)).catch((error: unknown) => error)).to.equal(failure)
    })
  })
})
