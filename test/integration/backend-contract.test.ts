import {createClient as createClickHouseClient} from '@clickhouse/client'
import {createClient as createRedisClient} from '@redis/client'
import {expect} from 'chai'
import {BackendError, BackendGaveUpError, type DeviceEvent, type RangeCountBackend, supportsFreshness, supportsRangeCounts} from '../../src/backends/backend.js'
import {type BackendName, type BackendOptions, createBackend} from '../../src/backends/registry.js'
import {type CountQuery, HOUR_MS} from '../../src/query/count-query.js'
import {until} from '../support/wait.js'
import {clickhouseUrl, redisUrl, uniqueName} from '../support/services.js'
import {closedPort, CuttableLink} from '../support/tcp-proxy.js'
import {exactCount} from './windows-fixture.js'

/**
 * The lifecycle contract of CountBackend (see its doc comment in src/backends/backend.ts), run
 * against every backend: memory in-process, redis and clickhouse on the real services the global
 * fixture started. Only what the contract promises is checked here; each backend's own tests check
 * the rest.
 */

interface Subject {
  name: BackendName
  /** Whether what was written outlives the instance (a new one reads it back). */
  persistent: boolean
  /** Fresh options: a key or database of the test's own. */
  options(): BackendOptions
  /** Options pointing the backend at 127.0.0.1:`port` with the password `secret` in the URL; none for memory. */
  at?(port: number): Partial<BackendOptions>
  /** The service's own address, for a relay in front of it. */
  service?: {url: () => string; defaultPort: number}
  cleanUp(options: BackendOptions): Promise<void>
}

const BASE_OPTIONS: BackendOptions = {
  redisUrl: '',
  redisKey: 'unused',
  clickhouseUrl: 'http://127.0.0.1:8123',
  clickhouseUser: 'default',
  clickhousePassword: '',
  clickhouseDatabase: 'unused',
  requestTimeoutMs: 3000,
  // A receipt of a buffering backend settles with the write after this interval (or flush()).
  flushIntervalMs: 200,
}

const SUBJECTS: Subject[] = [
  {
    name: 'memory',
    persistent: false,
    options: () => BASE_OPTIONS,
    cleanUp: async () => {},
  },
  {
    name: 'redis',
    persistent: true,
    options: () => ({...BASE_OPTIONS, redisUrl: redisUrl(), redisKey: uniqueName('ipc_contract')}),
    at: (port) => ({redisUrl: `redis://user:secret@127.0.0.1:${port}`}),
    service: {url: redisUrl, defaultPort: 6379},
    cleanUp: async (options) => {
      const client = createRedisClient({url: redisUrl()})
      await client.connect()
      try {
        const keys = [options.redisKey, ...(await client.keys(`{${options.redisKey}}:*`))]
        await client.del(keys)
      } finally {
        await client.close()
      }
    },
  },
  {
    name: 'clickhouse',
    persistent: true,
    options: () => ({...BASE_OPTIONS, clickhouseUrl: clickhouseUrl(), clickhouseDatabase: uniqueName('ipc_contract')}),
    at: (port) => ({clickhouseUrl: `http://default:secret@127.0.0.1:${port}`}),
    service: {url: clickhouseUrl, defaultPort: 8123},
    cleanUp: async (options) => {
      const admin = createClickHouseClient({url: clickhouseUrl(), request_timeout: 10_000})
      try {
        await admin.command({query: `DROP DATABASE IF EXISTS \`${options.clickhouseDatabase}\``})
      } finally {
        await admin.close()
      }
    },
  },
]

/** Three whole UTC hours, recent enough for every backend to keep them per hour (Redis: within its bucket TTL). */
const FIRST_HOUR = Math.floor(Date.now() / HOUR_MS) * HOUR_MS - 5 * HOUR_MS

/**
 * 60 devices over three hours and error codes 0..2, each event twice: device n reports error code
 * n % 3 in hour n % 3 and, for n < 20, error code 2 in the last hour as well.
 */
function fixtureEvents(): DeviceEvent[] {
  const events: DeviceEvent[] = []
  for (let n = 0; n < 60; n++) {
    const deviceIp = `10.9.${n >> 8}.${n & 255}`
    events.push({timestampMs: FIRST_HOUR + (n % 3) * HOUR_MS + n * 1000, deviceIp, errorCode: n % 3})
    if (n < 20) events.push({timestampMs: FIRST_HOUR + 2 * HOUR_MS + 7, deviceIp, errorCode: 2})
  }
  return [...events, ...events]
}

/** Distinct devices of the fixture in `query`. */
function truth(query: CountQuery): number {
  return exactCount(fixtureEvents(), query)
}

/** The exact answer, for a backend that may estimate (Redis HyperLogLog: 0.81% standard error). */
function expectCount(backend: RangeCountBackend, actual: number, exact: number, what: string): void {
  if (backend.exact) expect(actual, what).to.equal(exact)
  else expect(Math.abs(actual - exact), what).to.be.at.most(Math.max(1, exact * 0.02))
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  )
}

function expectClosedError(error: unknown, what: string): void {
  expect(error, what).to.be.instanceOf(BackendError)
  expect((error as BackendError).message, what).to.include('closed')
  expect((error as BackendError).retriable, `${what}: retriable`).to.equal(false)
}

for (const subject of SUBJECTS) {
  describe(`backend contract: ${subject.name}`, () => {
    const opened: RangeCountBackend[] = []
    const used: BackendOptions[] = []
    const links: CuttableLink[] = []

    async function backend(overrides: Partial<BackendOptions> = {}, options = subject.options()): Promise<RangeCountBackend> {
      const created = await createBackend(subject.name, {...options, ...overrides})
      if (!supportsRangeCounts(created)) throw new Error(`${subject.name} does not count ranges`)
      opened.push(created)
      used.push(options)
      return created
    }

    /** A backend behind a relay that the test can cut. */
    async function linkedBackend(overrides: Partial<BackendOptions>): Promise<{backend: RangeCountBackend; link: CuttableLink}> {
      const service = subject.service as NonNullable<Subject['service']>
      const link = await CuttableLink.forUrl(service.url(), service.defaultPort).start()
      links.push(link)
      const url = link.urlFor(service.url())
      return {backend: await backend({...(subject.name === 'redis' ? {redisUrl: url} : {clickhouseUrl: url}), ...overrides}), link}
    }

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((created) => created.close().catch(() => {})))
      await Promise.all(links.splice(0).map((link) => link.stop()))
      await Promise.all(used.splice(0).map((options) => subject.cleanUp(options)))
    })

    it('connect() prepares the backend and may be called again', async () => {
      const counter = await backend()
      await counter.connect()
      await counter.connect()
      expect(await counter.count()).to.equal(0)
    })

    it('add() resolves with a receipt whose durable resolves once the events are written; count() sees them', async () => {
      const counter = await backend()
      await counter.connect()
      const receipt = await counter.add(fixtureEvents())
      await receipt.durable
      expectCount(counter, await counter.count(), 60, 'all-time count')
    })

    it('countUnique() and countSeries() agree with the events, for whole UTC hours and error codes', async () => {
      const counter = await backend()
      await counter.connect()
      await (
        await counter.add(fixtureEvents())
      ).durable
      const queries: CountQuery[] = [
        {errorCodes: []},
        {errorCodes: [2]},
        {errorCodes: [0, 1]},
        {sinceMs: FIRST_HOUR, untilMs: FIRST_HOUR + 3 * HOUR_MS, errorCodes: []},
        {sinceMs: FIRST_HOUR + 2 * HOUR_MS, untilMs: FIRST_HOUR + 3 * HOUR_MS, errorCodes: [2]},
        {sinceMs: FIRST_HOUR, untilMs: FIRST_HOUR + HOUR_MS, errorCodes: [1]},
      ]
      for (const query of queries) expectCount(counter, await counter.countUnique(query), truth(query), JSON.stringify(query))
      const all = {sinceMs: FIRST_HOUR, untilMs: FIRST_HOUR + 3 * HOUR_MS, errorCodes: []}
      const series = await counter.countSeries(all, 'hour')
      const hours = [0, 1, 2].map((hour) => FIRST_HOUR + hour * HOUR_MS)
      expect(series.map((point) => point.startMs)).to.deep.equal(hours)
      for (const [index, startMs] of hours.entries()) {
        expectCount(counter, series[index].count, truth({sinceMs: startMs, untilMs: startMs + HOUR_MS, errorCodes: []}), `hour ${index}`)
      }
    })

    it('freshness() is undefined before the first write, then the newest event time or the time of the last write', async () => {
      const counter = await backend()
      if (!supportsFreshness(counter)) throw new Error(`${subject.name} does not tell its freshness`)
      expect(await counter.freshness(), 'before any write').to.equal(undefined)
      const startedMs = Date.now()
      await (
        await counter.add(fixtureEvents())
      ).durable
      const newest = Math.max(...fixtureEvents().map((event) => event.timestampMs))
      const fresh = await counter.freshness()
      if (counter.freshnessMeasure === 'newest-event') expect(fresh).to.equal(newest)
      else expect(fresh).to.be.within(startedMs, Date.now())
      const late = {timestampMs: newest - HOUR_MS, deviceIp: '10.9.9.9', errorCode: 0}
      await (
        await counter.add([late])
      ).durable
      const again = await counter.freshness()
      if (counter.freshnessMeasure === 'newest-event') expect(again, 'an older event leaves the newest').to.equal(newest)
      else expect(again, 'a later write moves it on').to.be.at.least(fresh as number)
    })

    it('flush() writes what is buffered: nothing is left unwritten and the count sees every event', async () => {
      const counter = await backend({flushIntervalMs: 600_000, batchSize: 1000})
      await counter.connect()
      const receipt = await counter.add(fixtureEvents())
      await counter.flush()
      expect(counter.unwrittenEvents).to.equal(0)
      await receipt.durable
      expectCount(counter, await counter.count(), 60, 'after flush')
    })

    it('needs no connect(): add() and the counts connect on demand', async () => {
      const counter = await backend()
      await (
        await counter.add(fixtureEvents())
      ).durable
      // A new instance (of a backend that keeps what it wrote) connects for its first count too.
      const reader = subject.persistent ? await backend({}, used[0]) : counter
      expectCount(reader, await reader.countUnique({errorCodes: [0]}), truth({errorCodes: [0]}), 'error code 0')
    })

    it('close() writes what is buffered and may be called twice, also at once; then connect(), add() and the counts reject', async () => {
      const options = subject.options()
      const counter = await backend({flushIntervalMs: 600_000}, options)
      await counter.connect()
      const receipt = await counter.add(fixtureEvents())
      await Promise.all([counter.close(), counter.close()])
      await receipt.durable
      await counter.close()
      expect(counter.unwrittenEvents).to.equal(0)
      expectClosedError(await failure(counter.add(fixtureEvents())), 'add() after close()')
      expectClosedError(await failure(counter.connect()), 'connect() after close()')
      expectClosedError(await failure(counter.count()), 'count() after close()')
      expectClosedError(await failure(counter.countUnique({errorCodes: [1]})), 'countUnique() after close()')
      if (subject.persistent) {
        const reader = await backend({}, options)
        expectCount(reader, await reader.count(), 60, 'read back by another instance')
      }
    })

    if (subject.at) {
      const at = subject.at
      it('an unreachable address: connect(), count() and a first add() reject with a retriable BackendError naming it without the password', async function () {
        this.timeout(20_000)
        const port = await closedPort()
        const counter = await backend(at(port))
        for (const [what, operation] of [
          ['connect()', () => counter.connect()],
          ['count()', () => counter.count()],
          ['add()', () => counter.add(fixtureEvents())],
        ] as const) {
          const error = await failure(operation())
          expect(error, what).to.be.instanceOf(BackendError)
          const {message, location, retriable} = error as BackendError
          expect(message, what).to.include(`127.0.0.1:${port}`).and.not.include('secret')
          expect(location, what).to.include(`127.0.0.1:${port}`).and.not.include('secret')
          expect(retriable, `${what}: a service that is down may come back`).to.equal(true)
        }
      })

      it('a failed write is retried and reported: write-failed with a retriable BackendError, then write-recovered, and the receipt resolves', async function () {
        this.timeout(30_000)
        const {backend: counter, link} = await linkedBackend({flushIntervalMs: 100})
        const failed: BackendError[] = []
        const recovered: number[] = []
        counter.on('write-failed', (error) => failed.push(error))
        counter.on('write-recovered', (failedForMs) => recovered.push(failedForMs))
        await counter.connect()
        link.cut()
        const receipt = await counter.add(fixtureEvents())
        await until('two failed attempts', () => failed.length >= 2, 20_000)
        expect(failed[0]).to.be.instanceOf(BackendError)
        expect(failed[0].retriable).to.equal(true)
        expect(failed[0].message).to.include(`127.0.0.1:${link.port}`)
        link.restore()
        await receipt.durable
        expect(recovered).to.have.lengthOf(1)
        expectCount(counter, await counter.count(), 60, 'after the recovery')
      })

      it('a write that keeps failing is given up after maxRetryTimeMs: write-gave-up, the receipt rejects, and so do later add() and flush()', async function () {
        this.timeout(30_000)
        const {backend: counter, link} = await linkedBackend({flushIntervalMs: 100, maxRetryTimeMs: 500})
        const gaveUp: BackendError[] = []
        counter.on('write-gave-up', (error) => gaveUp.push(error))
        await counter.connect()
        link.cut()
        const receipt = await counter.add(fixtureEvents())
        const error = await failure(receipt.durable)
        expect(error).to.be.instanceOf(BackendGaveUpError)
        expect(gaveUp).to.deep.equal([error])
        expect(await failure(counter.add(fixtureEvents()))).to.equal(error)
        expect(await failure(counter.flush())).to.equal(error)
      })

      it('close() stops retrying a failing write: close() and the receipt reject with the same error', async function () {
        this.timeout(30_000)
        const {backend: counter, link} = await linkedBackend({flushIntervalMs: 100})
        const failed: BackendError[] = []
        counter.on('write-failed', (error) => failed.push(error))
        await counter.connect()
        link.cut()
        const receipt = await counter.add(fixtureEvents())
        await until('a failed attempt', () => failed.length >= 1, 20_000)
        const closing = await failure(counter.close())
        expect(closing).to.be.instanceOf(BackendError).with.property('message').that.includes('closed')
        expect(await failure(receipt.durable)).to.equal(closing)
        await counter.close()
      })
    }
  })
}
