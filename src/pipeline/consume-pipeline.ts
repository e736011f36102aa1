import {EventEmitter} from 'node:events'
import type {Consumer, EachBatchPayload, Kafka} from 'kafkajs'
import {BackendError, type CountBackend} from '../backends/backend.js'
import {formatDuration} from '../util/duration.js'
import type {InvalidReason} from '../events/event.js'
import {errorLine} from '../util/errors.js'
import {LagMonitor} from '../kafka/lag-monitor.js'
import {isUnknownTopicError, TopicNotFoundError} from '../kafka/topics.js'
import type {CompressionName, UnreadableBatchError} from '../kafka/codecs.js'
import {settleWithin} from '../util/async.js'
import {type BatchStep, readBatch} from './batch-step.js'
import {DeadLetterSink} from './dead-letter-sink.js'
import {IdleTracker} from './idle-tracker.js'
import {CatchUpWatch, PartitionPositions, type StalledPartition} from './catch-up.js'
import {OffsetCommitter} from './offset-committer.js'
import {RateLimitedLog} from './rate-limited-log.js'
import {
  type ConsumeReport,
  type ConsumeStats,
  type ConsumeSummary,
  countDevices,
  emptyConsumeStats,
  startReports,
  type StopReason,
  summarise,
} from './consume-stats.js'

export interface ConsumeOptions {
  kafka: Kafka
  topic: string
  groupId: string
  /** Where a group without committed offsets starts: the earliest offset (true) or new messages only. */
  fromBeginning: boolean
  backend: CountBackend
  /** How long a member that stopped heartbeating (crashed) keeps its partitions. */
  sessionTimeoutMs?: number
  /**
   * Stop cleanly once the consumer has been caught up for this long: joined, fetches answered, no
   * message, and the group's lag read then shows nothing left to read on the partitions it holds.
   * Silence with events left to read is a stall, not idleness.
   */
  untilIdleMs?: number
  /** End the run (exit 3) when partitions with events left to read do not advance for this long. */
  stallLimitMs?: number
  /** Stop cleanly after processing this many messages. */
  maxMessages?: number
  /** Invalid messages are produced here with the reason in headers, before their offsets are committed. */
  dlqTopic?: string
  /** How dead letters are compressed. Default: none. */
  dlqCompression?: CompressionName
  reportIntervalMs: number
  onReport?: (report: ConsumeReport) => void
  /** How often the group's lag is read from the broker. Default 5 s. */
  lagIntervalMs?: number
  /**
   * False: the group's lag is not read (a {@link ConsumerPool}'s workers: the pool reads it once for
   * the group). Default true.
   */
  readLag?: boolean
  /** False: the summary has no device count (a pool's workers: the pool counts once for all). Default true. */
  countAtStop?: boolean
  /**
   * False: reaching `untilIdleMs` only emits `idle` (a pool's workers: the pool stops when all of
   * them are idle). Default true: the pipeline stops itself.
   */
  stopWhenIdle?: boolean
  /**
   * True: join the group with the topic paused and process nothing until {@link ConsumePipeline.release}
   * (a pool's workers wait until all of them hold their partitions, so none reads what another is given).
   */
  startHeld?: boolean
  /** Warnings and errors, one line each. */
  log: (line: string) => void
}

export type {ConsumeReport, ConsumeStats, ConsumeSummary, StopReason} from './consume-stats.js'

/**
 * What the pipeline tells as it works (instrumentation events, as a kafkajs consumer's): metrics
 * and other observers listen instead of being called from inside the pipeline.
 */
export interface PipelineEvents {
  /** One fetched batch was validated and handed to the backend (`invalid` by reason, only reasons seen). */
  'batch-processed': [
    batch: {topic: string; partition: number; processed: number; valid: number; invalid: Partial<Record<InvalidReason, number>>; deadLettered: number},
  ]
  /** Offsets were committed to the group. */
  committed: [offsets: Array<{topic: string; partition: number; offset: string}>]
  /** This member joined the group (again) and holds `partitions` partitions. */
  'group-joined': [membership: {memberId: string; leader: boolean; partitions: number}]
  /** The group is rebalancing: this member holds nothing until it has joined again. */
  rebalancing: []
  /** With `untilIdleMs`: the consumer has been caught up for that long (true), or has work again (false). */
  idle: [idle: boolean]
  /** A partition was read up to `nextOffset` (also past control records and aborted events). */
  'read-to': [position: {partition: number; nextOffset: string}]
  /** The Kafka client failed and restarts (a lost connection, a leader gone). */
  'kafka-error': [message: string]
  /** Partitions with events left to read that do not advance; empty when they move again. */
  stalled: [partitions: StalledPartition[]]
}

/** The consumer stopped because of a fault it could not get past (the cause is attached). */
export class ConsumeError extends Error {
  override name = 'ConsumeError'
}

/**
 * Kafka consumer group → validate → parse timestamp → count backend. Ties together the parts:
 * {@link parseEvent} validates, the backend stores, the {@link OffsetCommitter} commits a
 * partition's offset only after the backend reported durable every event up to it, the
 * {@link IdleTracker} decides `--until-idle`, and the {@link DeadLetterSink} keeps invalid messages.
 *
 * While the backend is down its writes are retried (by the backend) and `add()` holds the batch
 * once the backend's buffer is full. kafkajs fetches the next batch only after the current one
 * returns, so fetching pauses and memory stays bounded; the batch keeps heartbeating meanwhile so
 * the member stays in the group, and nothing is committed until the events are written.
 */
export class ConsumePipeline extends EventEmitter<PipelineEvents> {
  readonly stats: ConsumeStats
  /** The group's lag on the topic, read on a timer while the pipeline runs. */
  readonly lag: LagMonitor
  /** In the group with partitions, between a join and the next rebalance. */
  private member = false
  private backendConnected = false
  private consumer?: Consumer
  private deadLetters?: DeadLetterSink
  private readonly committer: OffsetCommitter
  private readonly idle = new IdleTracker()
  private readonly invalidLog: RateLimitedLog
  private inFlightDrained?: () => void
  private stopReason?: StopReason
  private failure?: Error
  private unreadableBatch?: UnreadableBatchError
  private stopRequested?: () => void
  private readonly stopSignal: Promise<void>
  private readonly heartbeatIntervalMs: number
  /** Writes have failed since the last successful one (the outage has been announced). */
  private backendFailing = false
  private held: boolean
  /** How far each held partition has been read, for deciding caught-up and stalls. */
  private readonly positions = new PartitionPositions()
  /** `--until-idle` and stalls from the group's lag; without it (a pool's members) the pool decides. */
  private readonly catchUp?: CatchUpWatch

  constructor(private readonly options: ConsumeOptions) {
    super()
    this.lag = new LagMonitor({kafka: options.kafka, topic: options.topic, groupId: options.groupId, fromBeginning: options.fromBeginning})
    this.stats = emptyConsumeStats()
    this.invalidLog = new RateLimitedLog(options.log)
    this.held = options.startHeld === true
    this.stopSignal = new Promise((resolve) => (this.stopRequested = resolve))
    this.heartbeatIntervalMs = Math.max(100, Math.floor((options.sessionTimeoutMs ?? 30_000) / 10))
    this.committer = new OffsetCommitter(async (offsets) => {
      if (!this.consumer) throw new ConsumeError('no consumer to commit with')
      await this.consumer.commitOffsets(offsets)
    })
    this.committer.on('committed', (offsets) => {
      for (const {partition, offset} of offsets) this.stats.committed[partition] = offset
      this.emit('committed', offsets)
    })
    this.committer.on('commit-failed', (error, offsets) => {
      // A partition may have moved to another member in a rebalance: its new owner re-reads
      // from the last commit, which at worst counts a device again (harmless for a distinct count).
      const where = offsets.map(({topic, partition, offset}) => `${topic}[${partition}]@${offset}`).join(', ')
      this.options.log(`commit of ${where} failed: ${error.message}`)
    })
    this.committer.on('durable-failed', (error, topic, partition) => this.fail(this.batchFailure(topic, partition, error)))
    this.on('read-to', ({partition, nextOffset}) => this.positions.read(partition, BigInt(nextOffset)))
    if (options.readLag !== false) {
      const catchUp = new CatchUpWatch({
        topic: options.topic,
        lag: this.lag,
        positions: this.positions,
        untilIdleMs: options.untilIdleMs,
        stallLimitMs: options.stallLimitMs,
        silentFor: (ms) => this.idle.idleFor(ms, Date.now()),
        busy: () => this.backendFailing,
      })
      catchUp.on('caught-up', () => {
        this.emit('idle', true)
        if (this.options.stopWhenIdle !== false) this.stop('idle')
      })
      catchUp.on('stalled', (partitions) => {
        this.options.log(catchUp.stallLine(partitions))
        this.emit('stalled', partitions)
      })
      catchUp.on('gave-up', (error) => this.fail(error))
      this.on('kafka-error', (message) => catchUp.kafkaError(message))
      this.catchUp = catchUp
    }
  }

  /** The stall in words for the report line and readiness, when partitions do not advance. */
  get stall(): string | undefined {
    return this.catchUp?.stallDescription
  }

  /** Logs a failed backend write attempt, and once per outage what the consumer does meanwhile. */
  private backendWriteFailed(error: Error): void {
    this.stats.backendErrors++
    const {backend, log} = this.options
    if (!this.backendFailing) {
      this.backendFailing = true
      log(
        `${backend.name}: writes are failing; retrying with backoff. No offset is committed until the events ` +
          `are written; fetching pauses while the backend holds back new events`,
      )
    }
    log(`${backend.name}: ${errorLine(error)}`)
  }

  private backendWriteRecovered(failedForMs: number): void {
    this.options.log(`${this.options.backend.name}: writing again after ${formatDuration(failedForMs)} of failures; catching up`)
    this.backendFailing = false
  }

  get stopping(): boolean {
    return this.stopReason !== undefined
  }

  /**
   * Ready to do its work (for a readiness probe): connected to the backend, a member of the group
   * with its partitions, and the backend's writes not failing. Otherwise the reason.
   */
  readiness(): {ready: true} | {ready: false; reason: string} {
    if (this.stopping) return {ready: false, reason: 'stopping'}
    if (!this.backendConnected) return {ready: false, reason: `not connected to ${this.options.backend.name} yet`}
    if (!this.member) return {ready: false, reason: `not a member of group ${this.options.groupId} (joining or rebalancing)`}
    if (this.backendFailing) return {ready: false, reason: `${this.options.backend.name} writes are failing`}
    const {stall} = this
    if (stall) return {ready: false, reason: stall}
    return {ready: true}
  }

  /** Starts fetching after `startHeld`; idle time counts from now. */
  release(): void {
    if (!this.held) return
    this.held = false
    this.idle.joined(Date.now())
    if (this.stopping) return
    try {
      this.consumer?.resume([{topic: this.options.topic}])
    } catch {
      // not running yet: it joins unpaused
    }
  }

  /** Asks for a clean stop: stop fetching, flush, commit, disconnect. Safe to call more than once. */
  stop(reason: StopReason = 'signal'): void {
    if (this.stopReason) return
    this.stopReason = reason
    this.stopRequested?.()
  }

  private fail(error: Error): void {
    this.failure ??= error
    this.committer.halt()
    this.stop('error')
  }

  /** Stops at a batch it cannot read, after storing and committing what came before it. */
  private unreadable(error: UnreadableBatchError): void {
    this.unreadableBatch ??= error
    this.stop('error')
  }

  /** Runs until stopped; resolves with the summary, rejects with ConsumeError on an unrecoverable fault. */
  async run(): Promise<ConsumeSummary> {
    const {kafka, topic, groupId, options} = {...this.options, options: this.options}
    options.backend.on('write-failed', (error) => this.backendWriteFailed(error))
    options.backend.on('write-recovered', (failedForMs) => this.backendWriteRecovered(failedForMs))
    await options.backend.connect()
    this.backendConnected = true
    const consumer = kafka.consumer({
      groupId,
      sessionTimeout: options.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: this.heartbeatIntervalMs,
      allowAutoTopicCreation: true,
      // A fetch long-poll holds a clean stop until it returns; keep it short.
      maxWaitTimeInMs: 500,
    })
    this.consumer = consumer
    if (options.dlqTopic) {
      this.deadLetters = new DeadLetterSink(kafka, options.dlqTopic, options.dlqCompression)
      await this.deadLetters.connect()
    }
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      // Emitted before the first fetch of the generation, so nothing is fetched unpaused.
      if (this.held) consumer.pause([{topic}])
      this.stats.joinedAt = Date.now()
      this.idle.joined(this.stats.joinedAt)
      this.member = true
      const {memberId, isLeader, memberAssignment} = event.payload
      this.positions.hold(memberAssignment[topic] ?? [])
      const partitions = Object.values(memberAssignment).reduce((sum, assigned) => sum + assigned.length, 0)
      this.emit('group-joined', {memberId, leader: isLeader, partitions})
    })
    consumer.on(consumer.events.REBALANCING, () => {
      this.idle.leftGeneration()
      this.member = false
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
        this.member = false
        options.log(`consumer restarting after error: ${error.message}`)
        this.emit('kafka-error', error.message)
      } else this.fail(new ConsumeError(`consumer crashed: ${error.message}`, {cause: error}))
    })

    const timers: NodeJS.Timeout[] = []
    try {
      await consumer.connect()
      await consumer.subscribe({topic, fromBeginning: options.fromBeginning}).catch((error: unknown) => {
        throw isUnknownTopicError(error) ? new TopicNotFoundError(topic, {cause: error}) : error
      })
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: async (payload) => this.handleBatch(payload),
      })
      timers.push(...this.startTimers())
      if (options.readLag !== false) this.lag.start(options.lagIntervalMs ?? DEFAULT_LAG_INTERVAL_MS)
      this.catchUp?.start()
      await this.stopSignal
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)))
    } finally {
      for (const timer of timers) clearInterval(timer)
      this.catchUp?.stop()
    }
    return this.shutDown(consumer)
  }

  private startTimers(): NodeJS.Timeout[] {
    const timers: NodeJS.Timeout[] = []
    const {untilIdleMs, reportIntervalMs, onReport} = this.options
    // Without the group's lag (a pool's member), silence is reported and the pool checks the lag.
    if (untilIdleMs !== undefined && !this.catchUp) {
      let wasIdle = false
      timers.push(
        setInterval(
          () => {
            const idle = this.idle.idleFor(untilIdleMs, Date.now())
            if (idle !== wasIdle) this.emit('idle', (wasIdle = idle))
            if (idle && this.options.stopWhenIdle !== false) this.stop('idle')
          },
          Math.min(250, Math.max(10, untilIdleMs / 4)),
        ),
      )
    }
    const reports = startReports(
      {stats: this.stats, backend: this.options.backend, lag: () => this.lag.total, stall: () => this.stall},
      reportIntervalMs,
      onReport,
    )
    if (reports) timers.push(reports)
    return timers
  }

  private async handleBatch({batch, resolveOffset, heartbeat, isRunning, isStale}: EachBatchPayload): Promise<void> {
    if (this.stopping) return
    this.idle.batchStarted()
    // A batch can wait long for the backend (back-pressure, retries): keep the membership alive.
    let heartbeatError: unknown
    let pendingHeartbeat: Promise<void> | undefined
    const keepAlive = setInterval(() => {
      pendingHeartbeat ??= heartbeat()
        .catch((error: unknown) => {
          heartbeatError ??= error
        })
        .finally(() => (pendingHeartbeat = undefined))
    }, this.heartbeatIntervalMs)
    try {
      // isStale() (a seek is pending) costs a JSON.stringify per call: ask once per batch.
      if (isStale()) return
      const {maxMessages} = this.options
      const step = readBatch({
        topic: batch.topic,
        partition: batch.partition,
        messages: batch.messages,
        lastOffset: () => batch.lastOffset(),
        limit: maxMessages === undefined ? Infinity : maxMessages - this.stats.processed,
        deadLetters: this.deadLetters !== undefined,
        isRunning,
      })
      this.count(batch.topic, batch.partition, step)
      if (step.unreadable) this.unreadable(step.unreadable)
      const {events, deadLetters, lastOffset} = step
      if (lastOffset === undefined) return
      const now = Date.now()
      this.stats.firstMessageAt ??= now
      this.stats.lastMessageAt = now

      if (deadLetters.length > 0 && this.deadLetters) {
        await this.deadLetters.send(deadLetters)
        this.stats.deadLettered += deadLetters.length
      }
      this.emit('batch-processed', {
        topic: batch.topic,
        partition: batch.partition,
        processed: step.processed,
        valid: events.length,
        invalid: step.invalidByReason,
        deadLettered: deadLetters.length,
      })
      const receipt = await this.options.backend.add(events)
      resolveOffset(lastOffset)
      const nextOffset = (BigInt(lastOffset) + 1n).toString()
      this.committer.add(batch.topic, batch.partition, nextOffset, receipt.durable)
      this.emit('read-to', {partition: batch.partition, nextOffset})
      if (maxMessages !== undefined && this.stats.processed >= maxMessages) this.stop('max-messages')
    } catch (error) {
      this.fail(this.batchFailure(batch.topic, batch.partition, error))
      return
    } finally {
      clearInterval(keepAlive)
      this.idle.batchEnded(Date.now())
      if (this.idle.inWork === 0) this.inFlightDrained?.()
    }
    await pendingHeartbeat
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

  private batchFailure(topic: string, partition: number, error: unknown): ConsumeError {
    if (error instanceof BackendError) {
      return new ConsumeError(
        `${this.options.backend.name} did not take the events of ${topic}[${partition}] (${error.message}); offsets from there on stay uncommitted`,
        {cause: error},
      )
    }
    return new ConsumeError(`processing ${topic}[${partition}] failed: ${errorLine(error)}`, {cause: error})
  }

  private async shutDown(consumer: Consumer): Promise<ConsumeSummary> {
    const reason = this.stopReason ?? 'signal'
    try {
      consumer.pause([{topic: this.options.topic}])
    } catch {
      // not running yet: nothing to pause
    }
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
    // The lag once the last commits are in: what a restart of this group would read again.
    if (!this.failure && this.options.readLag !== false) await this.lag.refresh()
    this.failure ??= this.unreadableBatch
    await this.lag.stop()
    await consumer.disconnect().catch((error: Error) => this.options.log(`disconnect: ${error.message}`))
    await this.deadLetters?.disconnect().catch(() => undefined)
    if (this.failure) {
      // Exiting with the failure: closing is best effort, bounded, and a buffering backend that
      // failed has nothing durable to add.
      await settleWithin(this.options.backend.close(), CLOSE_AFTER_FAILURE_MS).catch(() => undefined)
      throw this.failure
    }
    const counted = this.options.countAtStop === false ? {} : await countDevices(this.options.backend)
    await this.options.backend.close().catch((error: Error) => this.options.log(`closing backend: ${error.message}`))
    return summarise(this.stats, reason, counted, this.lag.total)
  }
}

/** How often the group's lag is read, by default. */
export const DEFAULT_LAG_INTERVAL_MS = 5000

/** How long closing the backend may take when the consumer already stops with a failure. */
const CLOSE_AFTER_FAILURE_MS = 5000
