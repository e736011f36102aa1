import {EventEmitter} from 'node:events'
import type {BackendEvents, CountBackend} from '../backends/backend.js'
import {exitCodeFor} from '../cli/exit-codes.js'
import type {InvalidReason} from '../events/event.js'
import type {Kafka} from '../kafka/client.js'
import {LagMonitor} from '../kafka/lag-monitor.js'
import type {MetricsBackend} from '../metrics/consumer-metrics.js'
import {CatchUpWatch, PartitionPositions} from './catch-up.js'
import {DEFAULT_LAG_INTERVAL_MS} from './consume-pipeline.js'
import {
  type ConsumeReport,
  type ConsumeStats,
  type ConsumeSummary,
  addUpStats,
  countDevices,
  type CountResult,
  emptyConsumeStats,
  startReports,
  type StopReason,
  summarise,
} from './consume-stats.js'
import type {ConsumeWorkerData, WorkerFailure} from './consume-worker.js'
import {WorkerMember} from './worker-member.js'
import {ConsumerPoolError, type PipelineEvents, type Readiness} from './member-events.js'

export {ConsumerPoolError} from './member-events.js'

export interface ConsumerPoolOptions {
  /** How many members, each in its own worker thread. */
  workers: number
  /** What every worker builds its Kafka client, backend and pipeline from. */
  worker: ConsumeWorkerData
  /** The pool's own client: it reads the group's lag once for all members. */
  kafka: Kafka
  /** The pool's own backend connection, for "Total devices" in reports and the summary. */
  countBackend: CountBackend
  /** End the run (exit 3) when partitions with events left to read do not advance for this long. */
  stallLimitMs?: number
  reportIntervalMs: number
  onReport?: (report: ConsumeReport) => void
  lagIntervalMs?: number
  log: (line: string) => void
}

/**
 * `ipc consume --workers N`: N consumer-group members in one process, each in a worker thread with
 * its own Kafka client, backend writer and {@link GroupMember} (Kafka Connect's `tasks.max`).
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
  readonly backend: MembersBackend
  private readonly members: WorkerMember[] = []
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
    const {topic, groupId, fromBeginning} = options.worker.member
    this.lag = new LagMonitor({kafka: options.kafka, topic, groupId, fromBeginning})
    this.stats = emptyConsumeStats()
    this.backend = new MembersBackend(options.countBackend.name, this.members)
    this.on('batch-processed', (batch) => this.countBatch(batch))
    this.on('committed', (offsets) => {
      for (const {partition, offset} of offsets) this.stats.committed[partition] = offset
    })
    this.backend.on('write-failed', () => this.stats.backendErrors++)
    this.on('read-to', ({partition, nextOffset}) => this.positions.read(partition, BigInt(nextOffset)))
    this.catchUp = new CatchUpWatch({
      topic,
      lag: this.lag,
      positions: this.positions,
      untilIdleMs: options.worker.untilIdleMs,
      stallLimitMs: options.stallLimitMs,
      silentFor: () => this.released && this.members.every((member) => member.idle),
      busy: () => this.members.some((member) => member.backendFailing),
    })
    this.catchUp.on('caught-up', () => this.stop('idle'))
    this.catchUp.on('stalled', (partitions) => {
      this.options.log(this.catchUp.stallLine(partitions))
      this.emit('stalled', partitions)
    })
    this.catchUp.on('gave-up', (error) => {
      this.failure ??= new ConsumerPoolError(error.message, exitCodeFor(error), false)
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

  readiness(): Readiness {
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
    for (const member of this.members) member.stop(reason)
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

  private startMember(index: number): WorkerMember {
    const member = new WorkerMember(index, this.options.worker)
    member.on('pipeline', (name, args) => this.memberEvent(member, name, args))
    member.on('backend', (name, args) => (this.backend.emit as (name: string, ...args: unknown[]) => boolean)(name, ...args))
    member.on('log', (line) => this.options.log(this.members.length > 1 ? `worker ${member.index}: ${line}` : line))
    member.on('failed', (failure) => this.memberFailed(member, failure))
    if (this.stopReason) member.stop(this.stopReason)
    return member
  }

  /** Re-emits a member's event as the pool's; a join tells the partitions of every member together. */
  private memberEvent(member: WorkerMember, name: keyof PipelineEvents, args: unknown[]): void {
    if (name === 'idle') member.idle = args[0] as boolean
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
    for (const member of this.members) member.release()
    this.lag.start(this.options.lagIntervalMs ?? DEFAULT_LAG_INTERVAL_MS)
    this.catchUp.start()
  }

  private async readPartitionCount(): Promise<number | undefined> {
    const admin = this.options.kafka.admin()
    this.metadataAdmin = admin
    try {
      await admin.connect()
      const {topics} = await admin.fetchTopicMetadata({topics: [this.options.worker.member.topic]})
      return topics[0]?.partitions.length
    } catch {
      // The members report a topic that does not exist, or a broker out of reach, themselves.
      return undefined
    } finally {
      await admin.disconnect().catch(() => undefined)
    }
  }

  private memberFailed(member: WorkerMember, failure: WorkerFailure): void {
    this.failure ??= new ConsumerPoolError(`worker ${member.index} of ${this.options.workers}: ${failure.line}`, failure.exitCode, failure.backendGaveUp)
    this.stop('error')
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
    const {maxMessages} = this.options.worker.member
    if (maxMessages !== undefined && this.stats.processed >= maxMessages) this.stop('max-messages')
  }

  /** The members' final stats added up, with the pool's start and join times. */
  private summary(counted: CountResult): ConsumeSummary {
    const each = this.members.flatMap((member) => (member.stats ? [member.stats] : []))
    const stats = {...addUpStats(each), startedAt: this.stats.startedAt, joinedAt: this.stats.joinedAt}
    return summarise(stats, this.stopReason ?? 'signal', counted, this.lag.total)
  }
}

/** The members' backend events and unwritten events, as one backend's (what the metrics read). */
class MembersBackend extends EventEmitter<BackendEvents> implements MetricsBackend {
  constructor(
    readonly name: string,
    private readonly members: readonly WorkerMember[],
  ) {
    super()
  }

  get unwrittenEvents(): number {
    return this.members.reduce((total, member) => total + member.unwrittenEvents, 0)
  }
}

/** How long members wait for each other before they start anyway. */
const RELEASE_AFTER_MS = 60_000
