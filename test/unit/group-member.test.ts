import {EventEmitter} from 'node:events'
import {expect} from 'chai'
import type {EachBatchPayload, Kafka, KafkaMessage, Message} from 'kafkajs'
import {type AddReceipt, BackendError, type BackendEvents, type DeviceEvent} from '../../src/backends/backend.js'
import type {TopicPartitionOffset} from '../../src/pipeline/offset-committer.js'
import {createGroupMember, type MemberSettings} from '../../src/pipeline/create-member.js'
import {type DeadLetters, GroupMember, type MemberBackend, type MemberConsumer} from '../../src/pipeline/group-member.js'
import {ConsumeError} from '../../src/pipeline/member-events.js'

const TOPIC = 'events'

function message(offset: number, value: string): KafkaMessage {
  return {offset: String(offset), key: null, value: Buffer.from(value), timestamp: '0', attributes: 0, headers: {}} as KafkaMessage
}

const event = (offset: number, ip = `10.0.0.${offset % 250}`) => message(offset, JSON.stringify({timestamp: 1_726_668_850_124, device_ip: ip, error_code: 3}))

/** A kafkajs consumer as the member sees it: the test joins it to the group and hands it batches. */
class FakeConsumer {
  readonly events = {GROUP_JOIN: 'group_join', REBALANCING: 'rebalancing', FETCH: 'fetch', END_BATCH_PROCESS: 'end_batch_process', CRASH: 'crash'}
  readonly commits: TopicPartitionOffset[][] = []
  readonly calls: string[] = []
  paused = false
  private running = false
  private eachBatch?: (payload: EachBatchPayload) => Promise<void>
  private readonly emitter = new EventEmitter()

  async connect(): Promise<void> {
    this.calls.push('connect')
  }

  async subscribe(): Promise<void> {
    this.calls.push('subscribe')
  }

  async run({eachBatch}: {eachBatch: (payload: EachBatchPayload) => Promise<void>}): Promise<void> {
    this.eachBatch = eachBatch
    this.running = true
  }

  pause(): void {
    if (!this.running) throw new Error('consumer not running')
    this.paused = true
  }

  resume(): void {
    if (!this.running) throw new Error('consumer not running')
    this.paused = false
  }

  async commitOffsets(offsets: TopicPartitionOffset[]): Promise<void> {
    this.calls.push(`commit ${offsets.map(({partition, offset}) => `${partition}@${offset}`).join(',')}`)
    this.commits.push(offsets)
  }

  async disconnect(): Promise<void> {
    this.calls.push('disconnect')
  }

  on(name: string, listener: (event: unknown) => void): () => void {
    this.emitter.on(name, listener)
    return () => this.emitter.off(name, listener)
  }

  join(partitions: number[]): void {
    this.emitter.emit('group_join', {payload: {memberId: 'member-1', isLeader: true, memberAssignment: {[TOPIC]: partitions}}})
  }

  emit(name: string, payload: unknown): void {
    this.emitter.emit(name, {payload})
  }

  /** Hands the member one batch of `partition`; resolves with the offsets it resolved once it returns. */
  async deliver(partition: number, messages: KafkaMessage[], lastOffset = messages.at(-1)?.offset ?? '0'): Promise<string[]> {
    if (!this.eachBatch) throw new Error('not running')
    const resolved: string[] = []
    await this.eachBatch({
      batch: {topic: TOPIC, partition, messages, lastOffset: () => lastOffset},
      resolveOffset: (offset: string) => resolved.push(offset),
      heartbeat: async () => undefined,
      isRunning: () => true,
      isStale: () => false,
    } as unknown as EachBatchPayload)
    return resolved
  }
}

/** A backend whose writes become durable when the test says so; `holdAdds` holds `add()` as a full buffer does. */
class FakeBackend extends EventEmitter<BackendEvents> {
  readonly name = 'fake'
  readonly added: DeviceEvent[][] = []
  flushes = 0
  holdAdds = false
  private readonly unwritten: Array<{resolve: () => void; reject: (error: Error) => void}> = []
  private heldAdds: Array<() => void> = []

  async connect(): Promise<void> {}

  async add(events: readonly DeviceEvent[]): Promise<AddReceipt> {
    if (this.holdAdds) await new Promise<void>((resolve) => this.heldAdds.push(resolve))
    this.added.push([...events])
    const durable = new Promise<void>((resolve, reject) => this.unwritten.push({resolve, reject}))
    durable.catch(() => undefined)
    return {durable}
  }

  releaseAdds(): void {
    this.holdAdds = false
    for (const release of this.heldAdds.splice(0)) release()
  }

  write(): void {
    for (const {resolve} of this.unwritten.splice(0)) resolve()
  }

  fail(error: Error): void {
    for (const {reject} of this.unwritten.splice(0)) reject(error)
  }

  async flush(): Promise<void> {
    this.flushes++
    this.write()
  }
}

class FakeDeadLetters {
  readonly sent: Message[] = []
  async connect(): Promise<void> {}
  async send(letters: Message[]): Promise<void> {
    this.sent.push(...letters)
  }

  async disconnect(): Promise<void> {}
}

const settle = () => new Promise((resolve) => setImmediate(resolve))

function setUp(options: {maxMessages?: number; deadLetters?: boolean} = {}) {
  const consumer = new FakeConsumer()
  const backend = new FakeBackend()
  const deadLetters = options.deadLetters ? new FakeDeadLetters() : undefined
  const lines: string[] = []
  const member = new GroupMember({
    consumer: consumer as unknown as MemberConsumer,
    topic: TOPIC,
    groupId: 'group',
    fromBeginning: true,
    backend: backend as unknown as MemberBackend,
    deadLetters: deadLetters as DeadLetters | undefined,
    heartbeatIntervalMs: 1000,
    maxMessages: options.maxMessages,
    log: (line) => lines.push(line),
  })
  const running = new Promise<void>((resolve) => member.once('running', resolve))
  return {consumer, backend, deadLetters, lines, member, running}
}

describe('GroupMember', () => {
  it('commits a batch’s next offset only once the backend holds its events durably', async () => {
    const {consumer, backend, member, running} = setUp()
    const run = member.run()
    await running
    consumer.join([0])
    const resolved = await consumer.deliver(0, [event(5), event(6)])
    expect(resolved).to.deep.equal(['6'])
    expect(backend.added[0]?.map((each) => each.source?.offset)).to.deep.equal(['5', '6'])
    await settle()
    expect(consumer.commits).to.deep.equal([])

    backend.write()
    await settle()
    expect(consumer.commits).to.deep.equal([[{topic: TOPIC, partition: 0, offset: '7'}]])
    member.stop()
    const {stats, reason} = await run
    expect(reason).to.equal('signal')
    expect(stats).to.include({processed: 2, valid: 2, invalid: 0})
    expect(stats.committed).to.deep.equal({0: '7'})
  })

  it('counts invalid messages by reason and sends their dead letters before the batch reaches the backend', async () => {
    const {consumer, backend, deadLetters, member, running, lines} = setUp({deadLetters: true})
    const run = member.run()
    await running
    consumer.join([0, 1])
    const processed = new Promise((resolve) => member.once('batch-processed', resolve))
    await consumer.deliver(1, [event(0), message(1, 'not json'), message(2, '')])
    expect(await processed).to.deep.include({partition: 1, processed: 3, valid: 1, deadLettered: 2})
    expect(deadLetters?.sent.map((letter) => letter.headers?.['ipc.error.reason']?.toString())).to.deep.equal(['invalid_json', 'empty_message'])
    expect(backend.added).to.have.length(1)
    member.stop()
    const {stats} = await run
    expect(stats).to.include({processed: 3, valid: 1, invalid: 2, deadLettered: 2})
    expect(stats.invalidByReason).to.include({invalid_json: 1, empty_message: 1})
    expect(stats.committed).to.deep.equal({1: '3'})
    expect(lines.some((line) => line.startsWith('invalid event (invalid_json) at events[1]@1'))).to.equal(true)
  })

  it('holds its partitions paused from the join until resumed', async () => {
    const {consumer, member, running} = setUp()
    member.pause()
    const run = member.run()
    await running
    consumer.join([0])
    expect(consumer.paused).to.equal(true)
    member.resume()
    expect(consumer.paused).to.equal(false)
    member.stop()
    await run
  })

  it('drains on stop: the batch in hand finishes, the backend flushes, commits settle, then it leaves the group', async () => {
    const {consumer, backend, member, running} = setUp()
    const run = member.run()
    await running
    consumer.join([0])
    backend.holdAdds = true
    const delivered = consumer.deliver(0, [event(10), event(11)])
    await settle()
    member.stop()
    let finished = false
    void run.finally(() => (finished = true))
    await settle()
    expect(finished, 'stopped while a batch waited for the backend').to.equal(false)
    expect(consumer.paused).to.equal(true)

    backend.releaseAdds()
    await delivered
    const {reason} = await run
    expect(reason).to.equal('signal')
    expect(backend.flushes).to.equal(1)
    expect(consumer.calls.slice(-2)).to.deep.equal(['commit 0@12', 'disconnect'])
  })

  it('stops with nothing committed from a batch the backend did not take', async () => {
    const {consumer, backend, member, running} = setUp()
    const run = member.run()
    await running
    consumer.join([0])
    await consumer.deliver(0, [event(0)])
    await consumer.deliver(0, [event(1)])
    backend.fail(new BackendError('connection refused', 'fake', 'localhost', {retriable: true}))
    const error = await run.then(
      () => undefined,
      (failure: unknown) => failure,
    )
    expect(error).to.be.instanceOf(ConsumeError)
    expect((error as Error).message).to.equal('fake did not take the events of events[0] (connection refused); offsets from there on stay uncommitted')
    expect(consumer.commits).to.deep.equal([])
    expect(consumer.calls.at(-1)).to.equal('disconnect')
  })

  it('stops at --max-messages with exactly that many taken and committed', async () => {
    const {consumer, member, running} = setUp({maxMessages: 3})
    const run = member.run()
    await running
    consumer.join([0])
    const resolved = await consumer.deliver(0, [event(0), event(1), event(2), event(3), event(4)], '4')
    expect(resolved).to.deep.equal(['2'])
    const {stats, reason} = await run
    expect(reason).to.equal('max-messages')
    expect(stats.processed).to.equal(3)
    expect(stats.committed).to.deep.equal({0: '3'})
  })

  it('commits past a batch of only control records once the earlier batches are durable', async () => {
    const {consumer, backend, member, running} = setUp()
    const run = member.run()
    await running
    consumer.join([0])
    await consumer.deliver(0, [event(0)])
    consumer.emit('end_batch_process', {topic: TOPIC, partition: 0, batchSize: 0, firstOffset: '1', lastOffset: '2'})
    await settle()
    expect(consumer.commits).to.deep.equal([])
    backend.write()
    await settle()
    expect(consumer.commits.flat().at(-1)).to.deep.equal({topic: TOPIC, partition: 0, offset: '3'})
    member.stop()
    await run
  })

  it('tells whether it is ready, and why not', async () => {
    const {consumer, backend, member, running} = setUp()
    expect(member.readiness()).to.deep.equal({ready: false, reason: 'not connected to fake yet'})
    const run = member.run()
    await running
    expect(member.readiness()).to.deep.equal({ready: false, reason: 'not a member of group group (joining or rebalancing)'})
    consumer.join([0])
    expect(member.readiness()).to.deep.equal({ready: true})
    backend.emit('write-failed', new BackendError('timeout', 'fake', 'localhost', {retriable: true}))
    expect(member.readiness()).to.deep.equal({ready: false, reason: 'fake writes are failing'})
    expect(member.backendFailing).to.equal(true)
    backend.emit('write-recovered', 1500)
    expect(member.readiness()).to.deep.equal({ready: true})
    consumer.emit('rebalancing', {})
    expect(member.readiness().ready).to.equal(false)
    member.stop()
    expect(member.readiness()).to.deep.equal({ready: false, reason: 'stopping'})
    const {stats} = await run
    expect(stats.backendErrors).to.equal(1)
  })

  it('stops with a ConsumeError when the Kafka client crashes for good, and only logs a restart', async () => {
    const {consumer, member, running, lines} = setUp()
    const events: string[] = []
    member.on('kafka-error', (text) => events.push(text))
    const run = member.run()
    await running
    consumer.emit('crash', {error: new Error('leader gone'), restart: true})
    expect(events).to.deep.equal(['leader gone'])
    expect(lines).to.include('consumer restarting after error: leader gone')
    consumer.emit('crash', {error: new Error('unsupported version'), restart: false})
    const error = await run.then(
      () => undefined,
      (failure: unknown) => failure,
    )
    expect(error).to.be.instanceOf(ConsumeError)
    expect((error as Error).message).to.equal('consumer crashed: unsupported version')
  })
})

describe('createGroupMember', () => {
  function consumerConfig(settings: Partial<MemberSettings>): Record<string, unknown> {
    const configs: Array<Record<string, unknown>> = []
    const kafka = {
      consumer: (config: Record<string, unknown>) => {
        configs.push(config)
        return new FakeConsumer()
      },
    } as unknown as Kafka
    createGroupMember(kafka, new FakeBackend() as unknown as MemberBackend, {topic: TOPIC, groupId: 'g', fromBeginning: true, ...settings}, () => undefined)
    return configs[0] ?? {}
  }

  it('fetches at most --fetch-max-bytes and --max-partition-fetch-bytes, heartbeating ten times per session timeout', () => {
    expect(consumerConfig({fetchMaxBytes: 4_194_304, maxPartitionFetchBytes: 524_288, sessionTimeoutMs: 6000})).to.include({
      groupId: 'g',
      maxBytes: 4_194_304,
      maxBytesPerPartition: 524_288,
      sessionTimeout: 6000,
      heartbeatInterval: 600,
    })
  })

  it('uses the documented defaults when no limit is given', () => {
    expect(consumerConfig({})).to.include({maxBytes: 2 * 1024 * 1024, maxBytesPerPartition: 256 * 1024, sessionTimeout: 30_000})
  })
})
