import {expect} from 'chai'
import {EventEmitter} from 'node:events'
import {BackendError, type AddReceipt, type BackendEvents, type RangeCountBackend} from '../../src/backends/backend.js'
import {createServerMetrics, type ServerMetrics} from '../../src/http/count-metrics.js'
import {BackendTimeoutError, CountSource, type CountSourceOptions, TOTAL_COUNT} from '../../src/http/count-source.js'
import {
  type BoundedCountQuery,
  type BucketSize,
  buildCountQuery,
  type CountQuery,
  CountQueryError,
  type CountQueryInput,
  HOUR_MS,
  type SeriesPoint,
} from '../../src/query/count-query.js'

type Call = 'count' | 'countUnique' | 'countSeries'

/** What every FakeBackend of one test does, and what was asked of them. */
class Fake {
  created = 0
  connects = 0
  closes = 0
  calls: Call[] = []
  queries: CountQuery[] = []
  total = 7
  unique = 3
  /** Set: every count call rejects with this message. */
  failWith: string | undefined
  /** Set: count calls wait for this promise. */
  gate: Promise<void> | undefined
  /** Set: countUnique calls wait for this promise. */
  uniqueGate: Promise<void> | undefined
  /** The instances (numbered from 1, in order of creation) whose count calls reject. */
  broken = new Set<number>()
}

class FakeBackend extends EventEmitter<BackendEvents> implements RangeCountBackend {
  readonly name = 'fake'
  readonly exact = true
  readonly location = 'fake://user:s3cret@host'
  readonly unwrittenEvents = 0
  readonly timeResolution = 'exact'

  private readonly instance: number

  constructor(private readonly fake: Fake) {
    super()
    this.instance = fake.created
  }

  async connect(): Promise<void> {
    this.fake.connects++
  }

  async add(): Promise<AddReceipt> {
    return {durable: Promise.resolve()}
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    this.fake.closes++
  }

  count(): Promise<number> {
    return this.answer('count', this.fake.total)
  }

  countUnique(query: CountQuery): Promise<number> {
    this.fake.queries.push(query)
    return this.answer('countUnique', this.fake.unique)
  }

  countSeries(query: BoundedCountQuery, by: BucketSize): Promise<SeriesPoint[]> {
    return this.answer('countSeries', [{startMs: query.sinceMs - (query.sinceMs % (by === 'hour' ? HOUR_MS : 1)), count: 2}])
  }

  private async answer<T>(call: Call, value: T): Promise<T> {
    this.fake.calls.push(call)
    await this.fake.gate
    if (call === 'countUnique') await this.fake.uniqueGate
    if (this.fake.broken.has(this.instance)) throw new BackendError('gone', this.name, this.location)
    if (this.fake.failWith) throw new BackendError(this.fake.failWith, this.name, this.location)
    return value
  }
}

async function valueOf(metric: {get(): Promise<{values: Array<{value: number}>}>}): Promise<number> {
  return (await metric.get()).values[0]?.value ?? 0
}

const NOW = Date.UTC(2024, 8, 18, 14, 30)

describe('serve: count source (one query path for the total and ranges)', () => {
  let fake: Fake
  let now: number
  let metrics: ServerMetrics
  let messages: string[]
  let parses: number

  function source(options: Partial<CountSourceOptions> = {}): CountSource {
    return new CountSource({
      createBackend: async () => {
        fake.created++
        return new FakeBackend(fake)
      },
      cacheMs: 1000,
      errorCacheMs: 100,
      timeoutMs: 1000,
      metrics,
      redact: (text) => text.replaceAll('s3cret', '***'),
      log: (message) => messages.push(message),
      now: () => now,
      ...options,
    })
  }

  /** A range request as the router makes it: parsed when the backend is asked. */
  function range(key: string, input: CountQueryInput = {since: '1h'}) {
    return {
      key,
      parse: () => {
        parses++
        return buildCountQuery(input, now)
      },
    }
  }

  beforeEach(() => {
    fake = new Fake()
    now = NOW
    metrics = createServerMetrics()
    messages = []
    parses = 0
  })

  it('answers the total with count() and a range with countUnique(), on one connected backend', async () => {
    const counts = source()
    const total = await counts.count(TOTAL_COUNT)
    const answer = await counts.count(range('since=1h'))
    expect(total).to.deep.include({ok: true, count: 7})
    expect(answer).to.deep.include({ok: true, count: 3})
    expect(answer.ok && answer.parsed.query).to.deep.equal({sinceMs: NOW - HOUR_MS, untilMs: NOW, errorCodes: []})
    expect(fake.calls).to.deep.equal(['count', 'countUnique'])
    expect([fake.created, fake.connects]).to.deep.equal([1, 1])
    expect(await valueOf(metrics.backendQueries)).to.equal(2)
    expect(await valueOf(metrics.backendUp)).to.equal(1)
  })

  it('asks for the series alongside the count when the range has `by`, in one backend query', async () => {
    const answer = await source().count(range('by=hour&since=1h', {since: '1h', by: 'hour'}))
    expect(fake.calls).to.deep.equal(['countUnique', 'countSeries'])
    expect(answer.ok && answer.series).to.have.length(1)
    expect(await valueOf(metrics.backendQueries)).to.equal(1)
  })

  it('caches every request by its key for cacheMs, the total and each range apart', async () => {
    const counts = source()
    await counts.count(TOTAL_COUNT)
    await counts.count(range('since=1h'))
    await counts.count(range('since=2h', {since: '2h'}))
    now += 999
    fake.total = 8
    expect(await counts.count(TOTAL_COUNT)).to.deep.include({count: 7})
    await counts.count(range('since=1h'))
    await counts.count(range('since=2h', {since: '2h'}))
    expect(fake.calls).to.deep.equal(['count', 'countUnique', 'countUnique'])
    expect(parses, 'a cached answer does not parse again').to.equal(2)
    expect(await valueOf(metrics.cacheHits)).to.equal(3)
    now += 1
    expect(await counts.count(TOTAL_COUNT)).to.deep.include({count: 8})
    await counts.count(range('since=1h'))
    expect(fake.calls).to.deep.equal(['count', 'countUnique', 'countUnique', 'count', 'countUnique'])
    expect(fake.queries.at(-1), 'a relative bound is read at the time of the query').to.deep.include({sinceMs: now - HOUR_MS, untilMs: now})
  })

  it('shares the query in flight among concurrent requests of the same key, for the total and a range alike', async () => {
    const counts = source({cacheMs: 0, errorCacheMs: 0})
    let open!: () => void
    fake.gate = new Promise((resolve) => (open = resolve))
    const answers = Promise.all([
      ...Array.from({length: 3}, () => counts.count(TOTAL_COUNT)),
      ...Array.from({length: 3}, () => counts.count(range('since=1h'))),
    ])
    await new Promise((resolve) => setImmediate(resolve))
    expect(await valueOf(metrics.sharedQueries)).to.equal(4)
    open()
    expect((await answers).map((answer) => answer.ok && answer.count)).to.deep.equal([7, 7, 7, 3, 3, 3])
    expect(fake.calls).to.deep.equal(['count', 'countUnique'])
    expect([fake.created, fake.connects], 'the total and the range waited for one backend instance').to.deep.equal([1, 1])
  })

  it('closes only the instance a call failed on, not the fresh one that replaced it', async () => {
    const counts = source({cacheMs: 0, errorCacheMs: 0})
    let open!: () => void
    fake.uniqueGate = new Promise((resolve) => (open = resolve))
    fake.broken.add(1)
    const slowRange = counts.count(range('since=1h'))
    expect((await counts.count(TOTAL_COUNT)).ok, 'the total fails on instance 1').to.equal(false)
    fake.uniqueGate = undefined
    expect((await counts.count(range('since=2h', {since: '2h'}))).ok, 'instance 2 answers').to.equal(true)
    open()
    expect((await slowRange).ok, 'the range still in flight on instance 1 fails').to.equal(false)
    expect([fake.created, fake.closes]).to.deep.equal([2, 1])
    expect((await counts.count(TOTAL_COUNT)).ok).to.equal(true)
    expect(fake.created, 'instance 2 is still in use').to.equal(2)
  })

  it('keeps the total in a slot of its own: a hundred range queries do not push it out of the cache', async () => {
    const counts = source()
    await counts.count(TOTAL_COUNT)
    for (let i = 1; i <= 101; i++) await counts.count(range(`since=${i}h`, {since: `${i}h`}))
    await counts.count(TOTAL_COUNT)
    await counts.count(range('since=101h', {since: '101h'}))
    expect(fake.calls.filter((call) => call === 'count')).to.have.length(1)
    await counts.count(range('since=1h'))
    expect(
      fake.calls.filter((call) => call === 'countUnique'),
      'the oldest of 101 ranges was dropped',
    ).to.have.length(102)
  })

  it('caches a backend failure for errorCacheMs only, then asks a fresh backend instance', async () => {
    const counts = source()
    fake.failWith = 'refused for s3cret'
    const failed = await counts.count(range('since=1h'))
    expect(failed.ok).to.equal(false)
    if (failed.ok) return
    expect(failed.error).to.be.instanceOf(BackendError)
    expect(failed.error.message).to.equal('refused for ***')
    expect(await valueOf(metrics.backendUp)).to.equal(0)
    expect(fake.closes, 'the failed instance is closed').to.equal(1)
    fake.failWith = undefined
    now += 99
    expect((await counts.count(range('since=1h'))).ok).to.equal(false)
    now += 1
    expect((await counts.count(range('since=1h'))).ok).to.equal(true)
    expect(fake.created).to.equal(2)
    expect(await valueOf(metrics.backendUp)).to.equal(1)
  })

  it('answers a request the query cannot be built for with a CountQueryError, cached like a failure, without asking the backend', async () => {
    const counts = source()
    const answer = await counts.count(range('since=yesterday', {since: 'yesterday'}))
    expect(answer.ok).to.equal(false)
    expect(!answer.ok && answer.error).to.be.instanceOf(CountQueryError)
    await counts.count(range('since=yesterday', {since: 'yesterday'}))
    expect(parses).to.equal(1)
    expect([fake.connects, fake.calls.length, fake.closes]).to.deep.equal([0, 0, 0])
    expect(await valueOf(metrics.backendQueries)).to.equal(0)
  })

  it('refuses ranges on a backend that counts only the total, and keeps that backend', async () => {
    const counts = source({
      createBackend: async () => {
        const backend = new FakeBackend(fake)
        return Object.assign(backend, {countUnique: undefined, countSeries: undefined})
      },
    })
    await counts.init()
    expect((await counts.count(TOTAL_COUNT)).ok).to.equal(true)
    const answer = await counts.count(range('since=1h'))
    expect(!answer.ok && answer.error.message).to.equal('the fake backend cannot count time ranges or error codes')
    expect(!answer.ok && answer.error).to.be.instanceOf(CountQueryError)
    expect([fake.connects, fake.closes]).to.deep.equal([1, 0])
    expect(await valueOf(metrics.backendQueries)).to.equal(1)
    expect(await valueOf(metrics.backendUp)).to.equal(1)
  })

  it('treats a count that is not a non-negative integer as a backend failure, for a range too', async () => {
    fake.unique = -1
    const answer = await source().count(range('since=1h'))
    expect(!answer.ok && answer.error.message).to.equal('fake returned an invalid count: -1')
  })

  it('gives up on a backend call after timeoutMs with a BackendTimeoutError', async () => {
    fake.gate = new Promise(() => {})
    const counts = source({timeoutMs: 20})
    const answer = await counts.count(range('since=1h'))
    expect(!answer.ok && answer.error).to.be.instanceOf(BackendTimeoutError)
    expect(!answer.ok && answer.error.message).to.equal('fake at fake://user:***@host did not answer count within 20 ms')
    const errors = await metrics.backendErrors.get()
    expect(errors.values.find((value) => value.labels.operation === 'count' && value.labels.reason === 'timeout')?.value).to.equal(1)
  })

  it('sets the unique-count gauge and tells the operator of outages from the total only', async () => {
    const counts = source({cacheMs: 0, errorCacheMs: 0})
    fake.failWith = 'down'
    await counts.count(range('since=1h'))
    expect(messages).to.deep.equal([])
    await counts.count(TOTAL_COUNT)
    await counts.count(TOTAL_COUNT)
    fake.failWith = undefined
    await counts.count(range('since=1h'))
    expect(await valueOf(metrics.uniqueCount)).to.equal(0)
    await counts.count(TOTAL_COUNT)
    expect(await valueOf(metrics.uniqueCount)).to.equal(7)
    expect(messages).to.deep.equal([
      'backend fake fake://user:***@host is unavailable: down; answering 503 until it is back',
      'backend fake fake://user:***@host is available again',
    ])
  })

  it('waits for the queries in flight on close, then closes the backend, and answers later requests with an error', async () => {
    const counts = source({cacheMs: 0, errorCacheMs: 0})
    let open!: () => void
    fake.gate = new Promise((resolve) => (open = resolve))
    const inFlight = counts.count(range('since=1h'))
    await new Promise((resolve) => setImmediate(resolve))
    const closed = counts.close()
    expect(fake.closes).to.equal(0)
    open()
    expect(await inFlight).to.deep.include({ok: true, count: 3})
    await closed
    expect(fake.closes).to.equal(1)
    const late = await counts.count(TOTAL_COUNT)
    expect(!late.ok && late.error.message).to.equal('the server is shutting down')
  })
})
