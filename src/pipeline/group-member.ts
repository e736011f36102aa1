import {EventEmitter} from 'node:events'
import type {Consumer, EachBatchPayload} from 'kafkajs'
import {BackendError, type CountBackend} from '../backends/backend.js'
import type {UnreadableBatchError} from '../kafka/codecs.js'
import {isUnknownTopicError, TopicNotFoundError} from '../kafka/topics.js'
import {formatDuration} from '../util/duration.js'
import {errorLine} from '../util/errors.js'
import {type BatchStep, readBatch} from './batch-step.js'
import {emptyConsumeStats, type StopReason} from './consume-stats.js'
import type {DeadLetterSink} from './dead-letter-sink.js'
import {BatchHeartbeat} from './batch-heartbeat.js'
import {IdleTracker} from './idle-tracker.js'
import {ConsumeError, type MemberEvents, type MemberResult, type Readiness} from './member-events.js'
import {OffsetCommitter} from './offset-committer.js'
import {RateLimitedLog} from './rate-limited-log.js'

/** The parts of a kafkajs consumer a member drives. */
export type MemberConsumer = Pick<Consumer, 'connect' | 'subscribe' | 'run' | 'pause' | 'resume' | 'commitOffsets' | 'disconnect' | 'on' | 'events'>

/** The parts of a backend a member writes to. */
export type MemberBackend = Pick<CountBackend, 'name' | 'connect' | 'add' | 'flush' | 'on'>

/** Where a member sends invalid messages. */
export type DeadLetters = Pick<DeadLetterSink, 'connect' | 'send' | 'disconnect'>

export interface GroupMemberOptions {
  consumer: MemberConsumer
  topic: string
  groupId: string
  fromBeginning: boolean
  backend: MemberBackend
  deadLetters?: DeadLetters
  /** How often a batch that waits for the backend heartbeats. */
  heartbeatIntervalMs: number
  /** Stop cleanly after processing this many messages. */
  maxMessages?: number
  /** Warnings and errors, one line each. */
  log: (line: string) => void
}

/**
 * One member of a consumer group, as kafkajs's Runner is for its consumer: it joins, runs the
 * fetch loop (each batch validated by {@link readBatch}, dead letters sent, events handed to the
 * backend), commits a partition's offset only after the backend reported durable every event up to
 * it (the {@link OffsetCommitter}), pauses its partitions on request, and drains on stop: no more
 * fetching, batches in hand finished, the backend flushed, commits settled, the consumer gone.
 *
 * While the backend is down its writes are retried (by the backend) and `add()` holds the batch
 * once the backend's buffer is full. kafkajs fetches the next batch only after the current one
 * returns, so fetching pauses and memory stays bounded; the batch keeps heartbeating meanwhile so
 * the member stays in the group, and nothing is committed until the events are written.
 *
 * The backend is connected by the member but neither counted nor closed: whoever composes members
 * owns its end.
 */
export class GroupMember extends EventEmitter<MemberEvents> {
  readonly stats = emptyConsumeStats()
  private readonly committer: OffsetCommitter
  private readonly idle = new IdleTracker()
  private readonly invalidLog: RateLimitedLog
  private inGroup = false
  private backendConnected = false
  private failing = false
  private paused = false
  private stopReason?: StopReason
  private failure?: Error
  private unreadableBatch?: UnreadableBatchError
  private inFlightDrained?: () => void
  private stopRequested?: () => void
  private readonly stopSignal = new Promise<void>((resolve) => (this.stopRequested = resolve))

  constructor(private readonly options: GroupMemberOptions) {
    super()
    this.invalidLog = new RateLimitedLog(options.log)
    this.committer = new OffsetCommitter(async (offsets) => options.consumer.commitOffsets(offsets))
    this.committer.on('committed', (offsets) => {
      for (const {partition, offset} of offsets) this.stats.committed[partition] = offset
      this.emit('committed', offsets)
    })
    this.committer.on('commit-failed', (error, offsets) => {
      // A partition may have moved to another member in a rebalance: its new owner re-reads
      // from the last commit, which at worst counts a device again (harmless for a distinct count).
      const where = offsets.map(({topic, partition, offset}) => `${topic}[${partition}]@${offset}`).join(', ')
      options.log(`commit of ${where} failed: ${error.message}`)
    })
    this.committer.on('durable-failed', (error, topic, partition) => this.abort(this.batchFailure(topic, partition, error)))
  }

  get stopping(): boolean {
    return this.stopReason !== undefined
  }

  /** Writes to the backend have failed since the last one that succeeded. */
  get backendFailing(): boolean {
    return this.failing
  }

  /** Whether the member has been caught up for `ms`: in the group, fetches answered, no batch in work, no message. */
  silentFor(ms: number): boolean {
    return this.idle.idleFor(ms, Date.now())
  }

  /** Connected to the backend, in the group with its partitions, and the backend's writes not failing; else why not. */
  readiness(): Readiness {
    const {backend, groupId} = this.options
    if (this.stopping) return {ready: false, reason: 'stopping'}
    if (!this.backendConnected) return {ready: false, reason: `not connected to ${backend.name} yet`}
    if (!this.inGroup) return {ready: false, reason: `not a member of group ${groupId} (joining or rebalancing)`}
    if (this.backendFailing) return {ready: false, reason: `${backend.name} writes are failing`}
    return {ready: true}
  }

  /** Holds the partitions paused: nothing is fetched until {@link resume}, also across rebalances. */
  pause(): void {
    this.paused = true
    this.tryConsumer((consumer) => consumer.pause([{topic: this.options.topic}]))
  }

  /** Fetches again after {@link pause}; idle time counts from now. */
  resume(): void {
    if (!this.paused) return
    this.paused = false
    this.idle.joined(Date.now())
    if (!this.stopping) this.tryConsumer((consumer) => consumer.resume([{topic: this.options.topic}]))
  }

  /** Asks for a clean stop: stop fetching, flush, commit, leave. Safe to call more than once. */
  stop(reason: StopReason = 'signal'): void {
    if (this.stopReason) return
    this.stopReason = reason
    this.stopRequested?.()
  }

  /** Stops with `error`: nothing more is committed, and {@link run} rejects with it. */
  abort(error: Error): void {
    this.failure ??= error
    this.committer.halt()
    this.stop('error')
  }

  /** Runs until stopped and drained; rejects with the fault that stopped it. */
  async run(): Promise<MemberResult> {
    const {backend, consumer, deadLetters, topic, fromBeginning} = this.options
    backend.on('write-failed', (error) => this.backendWriteFailed(error))
    backend.on('write-recovered', (failedForMs) => this.backendWriteRecovered(failedForMs))
    await backend.connect()
    this.backendConnected = true
    await deadLetters?.connect()
    this.listen(consumer)
    try {
      await consumer.connect()
      await consumer.subscribe({topic, fromBeginning}).catch((error: unknown) => {
        throw isUnknownTopicError(error) ? new TopicNotFoundError(topic, {cause: error}) : error
      })
      await consumer.run({autoCommit: false, eachBatchAutoResolve: false, eachBatch: async (payload) => this.handleBatch(payload)})
      this.emit('running')
      await this.stopSignal
    } catch (error) {
      this.abort(error instanceof Error ? error : new Error(String(error)))
    }
    await this.drain()
    await consumer.disconnect().catch((error: Error) => this.options.log(`disconnect: ${error.message}`))
    await deadLetters?.disconnect().catch(() => undefined)
    if (this.failure) throw this.failure
    return {stats: this.stats, reason: this.stopReason ?? 'signal'}
  }

  private listen(consumer: MemberConsumer): void {
    const {topic, log} = this.options
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      // Emitted before the first fetch of the generation, so nothing is fetched unpaused.
      if (this.paused) consumer.pause([{topic}])
      this.stats.joinedAt = Date.now()
      this.idle.joined(this.stats.joinedAt)
      this.inGroup = true
      const {memberId, isLeader, memberAssignment} = event.payload
      const partitions = Object.values(memberAssignment).reduce((sum, assigned) => sum + assigned.length, 0)
      this.emit('group-joined', {memberId, leader: isLeader, partitions, assigned: memberAssignment[topic] ?? []})
    })
    consumer.on(consumer.events.REBALANCING, () => {
      this.idle.leftGeneration()
      this.inGroup = false
      this.emit('rebalancing')
    })
    consumer.on(consumer.events.FETCH, () => this.idle.fetched(Date.now()))
    // A batch of nothing but control records or aborted events never reaches eachBatch: kafkajs
    // moves its position past them itself. Its offsets are committed here, after the earlier
    // batches of the partition are durable, so the group's lag can reach 0.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({payload}) => {
      if (payload.batchSize !== 0 || payload.firstOffset === null || this.failure || this.unreadableBatch) return
      const nextOffset = (BigInt(payload.lastOffset) + 1n).toString()
      this.committer.add(payload.topic, payload.partition, nextOffset, Promise.resolve())
      this.emit('read-to', {partition: payload.partition, nextOffset})
    })
    consumer.on(consumer.events.CRASH, (event) => {
      const {error, restart} = event.payload as {error: Error; restart: boolean}
      if (restart) {
        // A restarting client (kafkajs ran out of retries, e.g. while a dead node's partitions
        // move) holds no partitions until it has joined again.
        this.idle.leftGeneration()
        this.inGroup = false
        log(`consumer restarting after error: ${error.message}`)
        this.emit('kafka-error', error.message)
      } else this.abort(new ConsumeError(`consumer crashed: ${error.message}`, {cause: error}))
    })
  }

  private async handleBatch({batch, resolveOffset, heartbeat, isRunning, isStale}: EachBatchPayload): Promise<void> {
    if (this.stopping) return
    this.idle.batchStarted()
    // A batch can wait long for the backend (back-pressure, retries): keep the membership alive.
    const keepAlive = new BatchHeartbeat(heartbeat, this.options.heartbeatIntervalMs)
    try {
      // isStale() (a seek is pending) costs a JSON.stringify per call: ask once per batch.
      if (isStale()) return
      const {maxMessages, deadLetters, backend} = this.options
      const step = readBatch({
        topic: batch.topic,
        partition: batch.partition,
        messages: batch.messages,
        lastOffset: () => batch.lastOffset(),
        limit: maxMessages === undefined ? Infinity : maxMessages - this.stats.processed,
        deadLetters: deadLetters !== undefined,
        isRunning,
      })
      this.count(batch.topic, batch.partition, step)
      if (step.unreadable) {
        this.unreadableBatch ??= step.unreadable
        this.stop('error')
      }
      const {events, lastOffset} = step
      if (lastOffset === undefined) return
      const now = Date.now()
      this.stats.firstMessageAt ??= now
      this.stats.lastMessageAt = now
      if (step.deadLetters.length > 0 && deadLetters) {
        await deadLetters.send(step.deadLetters)
        this.stats.deadLettered += step.deadLetters.length
      }
      this.emit('batch-processed', {
        topic: batch.topic,
        partition: batch.partition,
        processed: step.processed,
        valid: events.length,
        invalid: step.invalidByReason,
        deadLettered: step.deadLetters.length,
      })
      const receipt = await backend.add(events)
      resolveOffset(lastOffset)
      const nextOffset = (BigInt(lastOffset) + 1n).toString()
      this.committer.add(batch.topic, batch.partition, nextOffset, receipt.durable)
      this.emit('read-to', {partition: batch.partition, nextOffset})
      if (maxMessages !== undefined && this.stats.processed >= maxMessages) this.stop('max-messages')
    } catch (error) {
      this.abort(this.batchFailure(batch.topic, batch.partition, error))
      return
    } finally {
      keepAlive.stop()
      this.idle.batchEnded(Date.now())
      if (this.idle.inWork === 0) this.inFlightDrained?.()
    }
    const heartbeatError = await keepAlive.settled()
    if (this.stopping) return
    // Heartbeat failures are kafkajs's to handle (a rebalance: rejoin; a lost broker: reconnect).
    // The batch is already resolved and its commit chained, so nothing is read twice for it.
    if (heartbeatError !== undefined) throw heartbeatError
    await heartbeat()
  }

  /** Adds a batch's messages to the stats and logs its invalid ones (rate-limited). */
  private count(topic: string, partition: number, step: BatchStep): void {
    this.stats.processed += step.processed
    this.stats.valid += step.events.length
    this.stats.invalid += step.invalid.length
    for (const {reason, offset, detail} of step.invalid) {
      this.stats.invalidByReason[reason]++
      this.invalidLog.log(`invalid ${reason}`, `invalid event (${reason}) at ${topic}[${partition}]@${offset}: ${detail}`)
    }
  }

  /** Stops fetching, lets the batches in hand finish, then flushes the backend and settles the commits. */
  private async drain(): Promise<void> {
    this.tryConsumer((consumer) => consumer.pause([{topic: this.options.topic}]))
    // A batch waiting for the backend ends when the backend takes it or gives up (maxRetryTimeMs).
    if (this.idle.inWork > 0) await new Promise<void>((resolve) => (this.inFlightDrained = resolve))
    if (!this.failure) {
      try {
        // Without maxRetryTimeMs a backend that stays down keeps this waiting (a second signal exits).
        await this.options.backend.flush()
        await this.committer.settled()
      } catch (error) {
        this.failure = new ConsumeError(`final flush failed, offsets of the unwritten events left uncommitted: ${errorLine(error)}`, {cause: error})
      }
    }
    this.invalidLog.flush()
    this.failure ??= this.unreadableBatch
  }

  private backendWriteFailed(error: Error): void {
    this.stats.backendErrors++
    const {backend, log} = this.options
    if (!this.failing) {
      this.failing = true
      log(
        `${backend.name}: writes are failing; retrying with backoff. No offset is committed until the events ` +
          `are written; fetching pauses while the backend holds back new events`,
      )
    }
    log(`${backend.name}: ${errorLine(error)}`)
  }

  private backendWriteRecovered(failedForMs: number): void {
    this.options.log(`${this.options.backend.name}: writing again after ${formatDuration(failedForMs)} of failures; catching up`)
    this.failing = false
  }

  private batchFailure(topic: string, partition: number, error: unknown): ConsumeError {
    if (error instanceof BackendError) {
      return new ConsumeError(
        `${this.options.backend.name} did not take the events of ${topic}[${partition}] (${error.message}); offsets from there on stay uncommitted`,
        {cause: error},
      )
    }
    return new ConsumeError(`processing ${topic}[${partition}] failed: ${errorLine(error)}`, {cause: error})
  }

  /** pause/resume throw before the consumer runs: it then joins in the state asked for. */
  private tryConsumer(act: (consumer: MemberConsumer) => void): void {
    try {
      act(this.options.consumer)
    } catch {
      // not running yet
    }
  }
}
