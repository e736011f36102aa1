import {expect} from 'chai'
import {BackendError} from '../../src/backends/backend.js'
import {MemoryBackend} from '../../src/backends/memory.js'
import {KafkaAuthenticationError, KafkaUnreachableError} from '../../src/kafka/client.js'
import type {GroupLagReader} from '../../src/kafka/group-lag-reader.js'
import {type GroupLag, LagTimeoutError, UnknownGroupError, UnknownTopicError} from '../../src/kafka/group-lag.js'
import {type CountServer, createCountServer} from '../../src/http/count-server.js'
import {freshnessPart, lagPart, lagProblemOf, type PipelineJson} from '../../src/http/pipeline-status.js'

const AT = Date.parse('2026-12-07T08:00:00.000Z')
const TARGET = {brokers: 'k1:9092,k2:9092', group: 'ipc', topic: 'events'}

function groupLag(lags: number[], withMember = true): GroupLag {
  const member = {memberId: 'm-1', clientId: 'ipc-consume', host: '10.0.0.5', assignment: [{topic: 'events', partitions: lags.map((_, index) => index)}]}
  return {
    group: 'ipc',
    state: withMember ? 'Stable' : 'Empty',
    partitions: lags.map((lag, partition) => ({
      topic: 'events',
      partition,
      committed: 100,
      start: 0,
      end: 100 + lag,
      lag,
      member: withMember ? member : undefined,
    })),
    members: withMember ? [member] : [],
    totalLag: lags.reduce((sum, lag) => sum + lag, 0),
  }
}

describe('GET /pipeline: the states of the lag', () => {
  const redact = (text: string) => text.replaceAll('s3cret', '***')

  it('says which problem a failed lag read is', () => {
    const unreachable = new KafkaUnreachableError(['k1:9092'], {cause: new Error('Connection error: connect ECONNREFUSED')})
    const connection = Object.assign(new Error('Connection error'), {name: 'KafkaJSConnectionError'})
    expect(lagProblemOf(unreachable)).to.equal('kafka-unreachable')
    expect(lagProblemOf(new LagTimeoutError('no answer'))).to.equal('kafka-unreachable')
    expect(lagProblemOf(new Error('retries exhausted', {cause: connection}))).to.equal('kafka-unreachable')
    expect(lagProblemOf(new UnknownGroupError('ipc'))).to.equal('group-unknown')
    expect(lagProblemOf(new UnknownTopicError('events'))).to.equal('topic-unknown')
    expect(lagProblemOf(new KafkaAuthenticationError(['k1:9092'], {cause: new Error('SASL')}))).to.equal('kafka-refused')
    expect(lagProblemOf(new Error('something else'))).to.equal('kafka-error')
  })

  it('is not-configured without a group', () => {
    expect(lagPart(undefined, undefined, redact)).to.deep.equal({state: 'not-configured'})
  })

  it('gives the total, every partition with its member, and the members', () => {
    const json = lagPart(TARGET, {ok: true, lag: groupLag([3, 0]), completedAt: AT}, redact)
    expect(json).to.deep.include({state: 'ok', brokers: 'k1:9092,k2:9092', group: 'ipc', topic: 'events', groupState: 'Stable', totalLag: 3})
    expect(json).to.include({checkedAt: '2026-12-07T08:00:00.000Z'})
    if (json.state !== 'ok') throw new Error('not ok')
    expect(json.partitions.map((partition) => [partition.partition, partition.lag, partition.memberId])).to.deep.equal([
      [0, 3, 'm-1'],
      [1, 0, 'm-1'],
    ])
    expect(json.members.map((member) => member.clientId)).to.deep.equal(['ipc-consume'])
  })

  it('says why it could not be read, without secrets', () => {
    const json = lagPart(TARGET, {ok: false, error: new Error('login of user:s3cret refused'), completedAt: AT}, redact)
    expect(json).to.deep.equal({
      state: 'kafka-error',
      brokers: 'k1:9092,k2:9092',
      group: 'ipc',
      topic: 'events',
      error: 'login of user:*** refused',
      checkedAt: '2026-12-07T08:00:00.000Z',
    })
  })
})

describe('GET /pipeline: the states of the freshness', () => {
  const backend = {name: 'clickhouse', location: 'http://127.0.0.1:8123'}

  it('gives the time and its age at the time of the reply', () => {
    const json = freshnessPart({ok: true, measure: 'newest-event', atMs: AT - 5000, completedAt: AT}, backend, AT + 2000)
    expect(json).to.deep.equal({
      state: 'ok',
      backend: 'clickhouse',
      location: 'http://127.0.0.1:8123',
      measure: 'newest-event',
      at: '2026-12-07T07:59:55.000Z',
      ageMs: 7000,
      checkedAt: '2026-12-07T08:00:00.000Z',
    })
  })

  it('is no-data while nothing is stored, backend-down when the backend fails, unsupported for a backend that cannot tell', () => {
    expect(freshnessPart({ok: true, measure: 'last-write', atMs: undefined, completedAt: AT}, backend, AT)).to.include({
      state: 'no-data',
      at: null,
      ageMs: null,
    })
    const down = freshnessPart({ok: false, error: new BackendError('connect ECONNREFUSED', 'redis', 'redis://h:6379'), completedAt: AT}, backend, AT)
    expect(down).to.deep.equal({
      state: 'backend-down',
      backend: 'redis',
      location: 'redis://h:6379',
      error: 'connect ECONNREFUSED',
      checkedAt: '2026-12-07T08:00:00.000Z',
    })
    expect(freshnessPart({ok: true, measure: undefined, atMs: undefined, completedAt: AT}, backend, AT)).to.deep.equal({
      state: 'unsupported',
      backend: 'clickhouse',
      location: 'http://127.0.0.1:8123',
    })
  })
})

describe('GET /pipeline on ipc serve', () => {
  let server: CountServer | undefined

  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  /** A reader that answers from `answers` in turn and counts its reads; the last answer repeats. */
  function fakeReader(answers: Array<GroupLag | Error>, gate?: Promise<void>): GroupLagReader & {reads: number; closed: boolean} {
    const reader = {
      reads: 0,
      closed: false,
      async read(): Promise<GroupLag> {
        const answer = answers[Math.min(reader.reads++, answers.length - 1)]
        await gate
        if (answer instanceof Error) throw answer
        return answer
      },
      async close(): Promise<void> {
        reader.closed = true
      },
    }
    return reader as unknown as GroupLagReader & {reads: number; closed: boolean}
  }

  async function get(path: string): Promise<{status: number; body: PipelineJson}> {
    const response = await fetch(`${server!.url}${path}`)
    return {status: response.status, body: (await response.json()) as PipelineJson}
  }

  it('without a group: lag not configured, and the newest event of the backend', async () => {
    const backend = new MemoryBackend()
    server = await createCountServer({createBackend: async () => backend, cacheMs: 0})
    await server.listen(0, '127.0.0.1')
    const empty = await get('/pipeline')
    expect(empty.status).to.equal(200)
    expect(empty.body.lag).to.deep.equal({state: 'not-configured'})
    expect(empty.body.freshness).to.include({state: 'no-data', backend: 'memory', measure: 'newest-event'})
    await backend.add([
      {timestampMs: AT, deviceIp: '10.0.0.1', errorCode: 0},
      {timestampMs: AT - 60_000, deviceIp: '10.0.0.2', errorCode: 0},
    ])
    const filled = await get('/pipeline')
    expect(filled.body.freshness).to.include({state: 'ok', at: '2026-12-07T08:00:00.000Z'})
    expect(await (await fetch(`${server.url}/unique_ip_count`)).text()).to.equal('{"unique_device_ip_count":2}\n')
  })

  it('reads the lag once for requests that arrive together and once per cache time, and closes the reader with the server', async () => {
    let open = () => {}
    const gate = new Promise<void>((resolve) => (open = resolve))
    const reader = fakeReader([groupLag([5, 2])], gate)
    let nowMs = AT
    server = await createCountServer({createBackend: async () => new MemoryBackend(), cacheMs: 1000, now: () => nowMs, lag: {target: TARGET, reader}})
    await server.listen(0, '127.0.0.1')
    const together = Promise.all([get('/pipeline'), get('/pipeline'), get('/pipeline')])
    await new Promise((resolve) => setTimeout(resolve, 50))
    open()
    const answers = await together
    expect(reader.reads).to.equal(1)
    for (const answer of answers) expect(answer.body.lag).to.include({state: 'ok', totalLag: 7})
    await get('/pipeline')
    expect(reader.reads, 'within the cache time').to.equal(1)
    nowMs += 1000
    await get('/pipeline')
    expect(reader.reads, 'after the cache time').to.equal(2)
    await server.close()
    server = undefined
    expect(reader.closed).to.equal(true)
  })

  it('says Kafka is unreachable while the reader fails, and logs it once and its recovery', async () => {
    const logged: string[] = []
    const unreachable = new KafkaUnreachableError(['k1:9092'], {cause: new Error('connect ECONNREFUSED 127.0.0.1:9')})
    const reader = fakeReader([unreachable, unreachable, groupLag([1])])
    let nowMs = AT
    server = await createCountServer({
      createBackend: async () => new MemoryBackend(),
      cacheMs: 1000,
      now: () => nowMs,
      log: (line) => logged.push(line),
      lag: {target: TARGET, reader},
    })
    await server.listen(0, '127.0.0.1')
    expect((await get('/pipeline')).body.lag).to.include({state: 'kafka-unreachable', group: 'ipc', brokers: 'k1:9092,k2:9092'})
    nowMs += 600
    expect((await get('/pipeline')).body.lag).to.include({state: 'kafka-unreachable'})
    nowMs += 600
    expect((await get('/pipeline')).body.lag).to.include({state: 'ok', totalLag: 1})
    expect(logged).to.deep.equal([
      `the lag of group ipc at k1:9092,k2:9092 cannot be read: ${unreachable.message}`,
      'the lag of group ipc at k1:9092,k2:9092 is available again',
    ])
  })
})
