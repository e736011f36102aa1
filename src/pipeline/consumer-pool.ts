import {EventEmitter} from 'node:events'
import {Worker} from 'node:worker_threads'
import type {BackendEvents, CountBackend} from '../backends/backend.js'
import {EXIT_FAILURE, EXIT_UNAVAILABLE} from '../cli/exit-codes.js'
import {INVALID_REASONS, type InvalidReason} from '../events/event.js'
import type {Kafka} from '../kafka/client.js'
import {LagMonitor} from '../kafka/lag-monitor.js'
import type {MetricsBackend} from '../metrics/consumer-metrics.js'
import {CatchUpWatch, PartitionPositions} from './catch-up.js'
import {ConsumeError, DEFAULT_LAG_INTERVAL_MS, type PipelineEvents} from './consume-pipeline.js'
import {
  type ConsumeReport,
  type ConsumeStats,
  type ConsumeSummary,
  countDevices,
  type CountResult,
  emptyConsumeStats,
  startReports,
  type StopReason,
  summarise,
} from './consume-stats.js'
import type {ConsumeWorkerData, PoolMessage, WorkerFailure, WorkerMessage} from './consume-worker.js'

export interface ConsumerPoolOptions {
  /** How many members, each in its own worker thread. */
  workers: number
  /** What every worker builds its Kafka client, backend and pipeline from. */
  worker: ConsumeWorkerData
  /** The pool's own client: it reads the group's lag once for all members. */
  kafka: Kafka
  /** The pool's own backend connection, for "Total devices" in reports and the summary. */
  countBackend: CountBackend
  reportIntervalMs: number
  onReport?: (report: ConsumeReport) => void
  lagIntervalMs?: number
  log: (line: string) => void
}

/** A worker's failure ended the pool; `exitCode` is the one that worker's error gives. */
export class ConsumerPoolError extends ConsumeError {
  override name = 'ConsumerPoolError'
  constructor(
    message: string,
    readonly exitCode: number,
    readonly backendGaveUp: boolean,
  ) {
    super(message)
  }
}

interface Member {
  index: number
  worker: Worker
  ready: {ready: true} | {ready: false; reason: string}
  unwrittenEvents: number
  /** Partitions held since its last join; 0 while rebalancing. */
  partitions: number
  joined: boolean
  /** Silent for `--until-idle` (the pool checks the group's lag before stopping). */
  idle: boolean
  /** Its backend's writes are failing. */
  backendFailing: boolean
  summary?: ConsumeSummary
  exited: Promise<void>
}

/**
 * `ipc consume --workers N`: N consumer-group members in one process, each in a worker thread with
 * its own Kafka client, backend writer and {@link ConsumePipeline} (Kafka Connect's `tasks.max`).
 * Each member commits its partitions' offsets only after its own backend writes hold them, so a
 * member that fails stops the pool with nothing committed past what was stored; the others flush
 * and commit what they hold first.
 *
 * To the command the pool looks like one pipeline: the members' instrumentation events are
 * re-emitted here (so one {@link ConsumerMetrics} serves them all), their stats add up, the lag
 * is read once for the group, `--until-idle` stops when every member is idle, and `--max-messages`
 * when the members together have processed that many (each finishes the batch in hand, so a few
 * more may be processed and committed).
 */
export class ConsumerPool extends EventEmitter<PipelineEvents> {
  readonly stats: ConsumeStats
  readonly lag: LagMonitor
  /** The members' backend events, as one backend's (for metrics). */
  readonly backend: MetricsBackend
  private readonly members: Member[] = []
  private readonly backendEvents = new EventEmitter<BackendEvents>()
  private stopReason?: StopReason
  private failure?: ConsumerPoolError
  /** The topic's partitions (undefined: unknown), once read: the members start when they hold all of them between them. */
  private partitionCount?: {count?: number}
  private released = false
  private metadataAdmin?: ReturnType<Kafka['admin']>
  private releaseTimer?: NodeJS.Timeout
  /** How far the members have read each partition; the pool holds them all. */
  private readonly positions = new PartitionPositions()
  private readonly catchUp: CatchUpWatch

  constructor(private readonly options: ConsumerPoolOptions) {
    super()
    const {topic, groupId, fromBeginning} = options.worker.pipeline
    this.lag = new LagMonitor({kafka: options.kafka, topic, groupId, fromBeginning})
    this.stats = emptyConsumeStats()
    const members = this.members
    // A getter: Object.assign would copy its value once.
    this.backend = Object.defineProperties(this.backendEvents, {
      name: {value: options.countBackend.name},
      unwrittenEvents: {get: () => members.reduce((total, member) => total + member.unwrittenEvents, 0)},
    }) as EventEmitter<BackendEvents> & MetricsBackend
    this.on('batch-processed', (batch) => this.countBatch(batch))
    this.on('committed', (offsets) => {
      for (const {partition, offset} of offsets) this.stats.committed[partition] = offset
    })
    this.backendEvents.on('write-failed', () => this.stats.backendErrors++)
    this.on('read-to', ({partition, nextOffset}) => this.positions.read(partition, BigInt(nextOffset)))
    this.catchUp = new CatchUpWatch({
      topic,
      lag: this.lag,
      positions: this.positions,
      untilIdleMs: options.worker.pipeline.untilIdleMs,
      stallLimitMs: options.worker.pipeline.stallLimitMs,
      silentFor: () => this.released && this.members.every((member) => member.idle),
      busy: () => this.members.some((member) => member.backendFailing),
    })
    this.catchUp.on('caught-up', () => this.stop('idle'))
    this.catchUp.on('stalled', (partitions) => {
      this.options.log(this.catchUp.stallLine(partitions))
      this.emit('stalled', partitions)
    })
    this.catchUp.on('gave-up', (error) => {
      this.failure ??= new ConsumerPoolError(error.message, EXIT_UNAVAILABLE, false)
      this.stop('error')
    })
    this.on('kafka-error', (message) => this.catchUp.kafkaError(message))
  }

  /** The stall in words, when partitions with events left to read do not advance. */
  get stall(): string | undefined {
    return this.catchUp.stallDescription
  }

  get stopping(): boolean {
    return this.stopReason !== undefined
  }

  readiness(): {ready: true} | {ready: false; reason: string} {
    if (this.stopping) return {ready: false, reason: 'stopping'}
    const notReady = this.members.find((member) => !member.ready.ready)
    if (notReady && !notReady.ready.ready) return {ready: false, reason: `worker ${notReady.index}: ${notReady.ready.reason}`}
    const {stall} = this
    if (stall) return {ready: false, reason: stall}
    return {ready: true}
  }

  /** Asks every member to stop cleanly (flush, commit, leave the group). Safe to call more than once. */
  stop(reason: StopReason = 'signal'): void {
    if (this.stopReason) return
    this.stopReason = reason
    for (const member of this.members) member.worker.postMessage({type: 'stop', reason} satisfies PoolMessage)
  }

  /** Runs until every member has stopped; rejects with {@link ConsumerPoolError} when one failed. */
  async run(): Promise<ConsumeSummary> {
    const {options} = this
    await options.countBackend.connect().catch(() => undefined)
    for (let index = 1; index <= options.workers; index++) this.members.push(this.startMember(index))
    // Read beside the members' start: a broker out of reach is for them to report, without a wait first.
    void this.readPartitionCount().then((count) => {
      this.partitionCount = {count}
      this.releaseWhenSettled()
    })
    // A member that never gets its share (a group that keeps rebalancing) must not hold the others for ever.
    this.releaseTimer = setTimeout(() => this.release(), RELEASE_AFTER_MS)
    const report = startReports(
      {stats: this.stats, backend: options.countBackend, lag: () => this.lag.total, stall: () => this.stall},
      options.reportIntervalMs,
      options.onReport,
    )
    try {
      await Promise.all(this.members.map((member) => member.exited))
    } finally {
      clearInterval(report)
      clearTimeout(this.releaseTimer)
      this.catchUp.stop()
      // Still retrying when the members could not reach the broker either.
      await this.metadataAdmin?.disconnect().catch(() => undefined)
    }
    if (!this.failure) await this.lag.refresh()
    await this.lag.stop()
    const counted = this.failure ? {} : await countDevices(options.countBackend)
    await options.countBackend.close().catch(() => undefined)
    if (this.failure) throw this.failure
    return this.summary(counted)
  }

  private startMember(index: number): Member {
    const worker = new Worker(new URL('./consume-worker.js', import.meta.url), {workerData: this.options.worker})
    let finished = false
    const member: Member = {
      index,
      worker,
      ready: {ready: false, reason: 'starting'},
      unwrittenEvents: 0,
      partitions: 0,
      joined: false,
      idle: false,
      backendFailing: false,
      exited: Promise.resolve(),
    }
    member.exited = new Promise<void>((resolve) => {
      worker.on('message', (message: WorkerMessage) => {
        if (message.type === 'done' || message.type === 'failed') {
          finished = true
          // Disconnected and closed by now; a client connection kafkajs leaves open would keep the thread alive.
          void worker.terminate()
        }
        this.handle(member, message)
      })
      worker.on('error', (error) => this.memberFailed(member, {line: `crashed: ${error.message}`, exitCode: EXIT_FAILURE, backendGaveUp: false}))
      worker.on('exit', (code) => {
        if (!finished) this.memberFailed(member, {line: `exited unexpectedly (code ${code})`, exitCode: EXIT_FAILURE, backendGaveUp: false})
        resolve()
      })
    })
    if (this.stopReason) worker.postMessage({type: 'stop', reason: this.stopReason} satisfies PoolMessage)
    return member
  }

  private handle(member: Member, message: WorkerMessage): void {
    switch (message.type) {
      case 'pipeline': {
        this.memberEvent(member, message.name, message.args)
        break
      }
      case 'backend': {
        if (message.name === 'write-failed') member.backendFailing = true
        if (message.name === 'write-recovered') member.backendFailing = false
        ;(this.backendEvents.emit as (name: string, ...args: unknown[]) => boolean)(message.name, ...message.args)
        break
      }
      case 'status': {
        member.ready = message.ready
        member.unwrittenEvents = message.unwrittenEvents
        break
      }
      case 'log': {
        this.options.log(this.members.length > 1 ? `worker ${member.index}: ${message.line}` : message.line)
        break
      }
      case 'done': {
        member.summary = message.summary
        member.ready = {ready: false, reason: 'stopped'}
        break
      }
      case 'failed': {
        this.memberFailed(member, message.failure)
        break
      }
    }
  }

  /** Re-emits a member's event as the pool's; a join tells the partitions of every member together. */
  private memberEvent(member: Member, name: keyof PipelineEvents, args: unknown[]): void {
    if (name === 'idle') this.memberIdle(member, args[0] as boolean)
    if (name === 'rebalancing') member.partitions = 0
    if (name === 'group-joined') {
      const membership = args[0] as PipelineEvents['group-joined'][0]
      member.partitions = membership.partitions
      member.joined = true
      args = [{...membership, partitions: this.heldPartitions()}]
      this.releaseWhenSettled()
    }
    ;(this.emit as (name: string, ...args: unknown[]) => boolean)(name, ...args)
  }

  private heldPartitions(): number {
    return this.members.reduce((total, each) => total + each.partitions, 0)
  }

  /** Releases the members once all have joined and, between them, hold every partition. */
  private releaseWhenSettled(): void {
    if (!this.partitionCount) return
    const everyMemberJoined = this.members.length === this.options.workers && this.members.every((each) => each.joined)
    const {count} = this.partitionCount
    if (everyMemberJoined && (count === undefined || this.heldPartitions() === count)) this.release()
  }

  /**
   * Lets every member fetch. Until then they hold their partitions paused: with members joining one
   * after another, the first would otherwise read partitions that the next rebalance gives to
   * another member, which then reads them again from the last commit.
   */
  private release(): void {
    if (this.released) return
    this.released = true
    clearTimeout(this.releaseTimer)
    this.stats.joinedAt = Date.now()
    for (const member of this.members) member.worker.postMessage({type: 'release'} satisfies PoolMessage)
    this.lag.start(this.options.lagIntervalMs ?? DEFAULT_LAG_INTERVAL_MS)
    this.catchUp.start()
  }

  private async readPartitionCount(): Promise<number | undefined> {
    const admin = this.options.kafka.admin()
    this.metadataAdmin = admin
    try {
      await admin.connect()
      const {topics} = await admin.fetchTopicMetadata({topics: [this.options.worker.pipeline.topic]})
      return topics[0]?.partitions.length
    } catch {
      // The members report a topic that does not exist, or a broker out of reach, themselves.
      return undefined
    } finally {
      await admin.disconnect().catch(() => undefined)
    }
  }

  private memberFailed(member: Member, failure: WorkerFailure): void {
    member.ready = {ready: false, reason: 'failed'}
    this.failure ??= new ConsumerPoolError(`worker ${member.index} of ${this.options.workers}: ${failure.line}`, failure.exitCode, failure.backendGaveUp)
    this.stop('error')
  }

  private memberIdle(member: Member, idle: boolean): void {
    member.idle = idle
  }

  private countBatch(batch: PipelineEvents['batch-processed'][0]): void {
    const now = Date.now()
    this.stats.processed += batch.processed
    this.stats.valid += batch.valid
    this.stats.deadLettered += batch.deadLettered
    for (const [reason, count] of Object.entries(batch.invalid) as Array<[InvalidReason, number]>) {
      this.stats.invalid += count
      this.stats.invalidByReason[reason] += count
    }
    this.stats.firstMessageAt ??= now
    this.stats.lastMessageAt = now
    const {maxMessages} = this.options.worker.pipeline
    if (maxMessages !== undefined && this.stats.processed >= maxMessages) this.stop('max-messages')
  }

  /** The members' final stats added up; rates and join time over the whole pool. */
  private summary(counted: CountResult): ConsumeSummary {
    const summaries = this.members.flatMap((member) => (member.summary ? [member.summary] : []))
    const stats = this.stats
    stats.processed = sum(summaries, (each) => each.stats.processed)
    stats.valid = sum(summaries, (each) => each.stats.valid)
    stats.invalid = sum(summaries, (each) => each.stats.invalid)
    stats.deadLettered = sum(summaries, (each) => each.stats.deadLettered)
    stats.backendErrors = sum(summaries, (each) => each.stats.backendErrors)
    for (const reason of INVALID_REASONS) stats.invalidByReason[reason] = sum(summaries, (each) => each.stats.invalidByReason[reason])
    stats.committed = Object.assign({}, ...summaries.map((each) => each.stats.committed)) as Record<number, string>
    stats.firstMessageAt = extreme(
      Math.min,
      summaries.map((each) => each.stats.firstMessageAt),
    )
    stats.lastMessageAt = extreme(
      Math.max,
      summaries.map((each) => each.stats.lastMessageAt),
    )
    return summarise(stats, this.stopReason ?? 'signal', counted, this.lag.total)
  }
}

/** How long members wait for each other before they start anyway. */
const RELEASE_AFTER_MS = 60_000

function sum<T>(items: readonly T[], value: (item: T) => number): number {
  return items.reduce((total, item) => total + value(item), 0)
}

/** The earliest (Math.min) or latest (Math.max) of the times that are known. */
function extreme(pick: (...values: number[]) => number, times: Array<number | undefined>): number | undefined {
  const known = times.filter((time): time is number => time !== undefined)
  return known.length === 0 ? undefined : pick(...known)
}
