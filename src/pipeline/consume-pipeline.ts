import {EventEmitter} from 'node:events'
import type {Kafka} from 'kafkajs'
import type {CountBackend} from '../backends/backend.js'
import {LagMonitor} from '../kafka/lag-monitor.js'
import {settleWithin} from '../util/async.js'
import {CatchUpWatch, PartitionPositions} from './catch-up.js'
import {type ConsumeReport, type ConsumeSummary, countDevices, startReports, type StopReason, summarise} from './consume-stats.js'
import {createGroupMember, type MemberSettings} from './create-member.js'
import type {GroupMember} from './group-member.js'
import {MEMBER_EVENTS, type PipelineEvents, type Readiness} from './member-events.js'

export interface ConsumeOptions extends MemberSettings {
  kafka: Kafka
  backend: CountBackend
  /**
   * Stop cleanly once the consumer has been caught up for this long: joined, fetches answered, no
   * message, and the group's lag read then shows nothing left to read on the partitions it holds.
   * Silence with events left to read is a stall, not idleness.
   */
  untilIdleMs?: number
  /** End the run (exit 3) when partitions with events left to read do not advance for this long. */
  stallLimitMs?: number
  reportIntervalMs: number
  onReport?: (report: ConsumeReport) => void
  /** How often the group's lag is read from the broker. Default 5 s. */
  lagIntervalMs?: number
  /** Warnings and errors, one line each. */
  log: (line: string) => void
}

export type {ConsumeReport, ConsumeStats, ConsumeSummary, StopReason} from './consume-stats.js'
export {ConsumeError, type PipelineEvents} from './member-events.js'

/**
 * `ipc consume` with one member: a {@link GroupMember} does the group's work; around it this reads
 * the group's lag, decides `--until-idle` and stalls from it ({@link CatchUpWatch}), reports, and
 * at the end counts the devices and closes the backend. The member's events are re-emitted here.
 */
export class ConsumePipeline extends EventEmitter<PipelineEvents> {
  /** The group's lag on the topic, read on a timer while the pipeline runs. */
  readonly lag: LagMonitor
  private readonly member: GroupMember
  private readonly positions = new PartitionPositions()
  private readonly catchUp: CatchUpWatch

  constructor(private readonly options: ConsumeOptions) {
    super()
    const {kafka, topic, groupId, fromBeginning, backend, log} = options
    this.lag = new LagMonitor({kafka, topic, groupId, fromBeginning})
    this.member = createGroupMember(kafka, backend, options, log)
    for (const name of MEMBER_EVENTS) this.member.on(name, (...args: unknown[]) => (this.emit as (name: string, ...args: unknown[]) => boolean)(name, ...args))
    this.on('group-joined', ({assigned}) => this.positions.hold(assigned))
    this.on('read-to', ({partition, nextOffset}) => this.positions.read(partition, BigInt(nextOffset)))
    this.catchUp = new CatchUpWatch({
      topic,
      lag: this.lag,
      positions: this.positions,
      untilIdleMs: options.untilIdleMs,
      stallLimitMs: options.stallLimitMs,
      silentFor: (ms) => this.member.silentFor(ms),
      busy: () => this.member.backendFailing,
    })
    this.catchUp.on('caught-up', () => {
      this.emit('idle', true)
      this.stop('idle')
    })
    this.catchUp.on('stalled', (partitions) => {
      log(this.catchUp.stallLine(partitions))
      this.emit('stalled', partitions)
    })
    this.catchUp.on('gave-up', (error) => this.member.abort(error))
    this.on('kafka-error', (message) => this.catchUp.kafkaError(message))
  }

  get stats() {
    return this.member.stats
  }

  get stopping(): boolean {
    return this.member.stopping
  }

  /** The stall in words for the report line and readiness, when partitions do not advance. */
  get stall(): string | undefined {
    return this.catchUp.stallDescription
  }

  /** Ready to do its work (for a readiness probe): the member ready and no partition stalled; else why not. */
  readiness(): Readiness {
    const member = this.member.readiness()
    if (!member.ready) return member
    const {stall} = this
    return stall ? {ready: false, reason: stall} : {ready: true}
  }

  /** Asks for a clean stop: stop fetching, flush, commit, disconnect. Safe to call more than once. */
  stop(reason: StopReason = 'signal'): void {
    this.member.stop(reason)
  }

  /** Runs until stopped; resolves with the summary, rejects with the fault that stopped it. */
  async run(): Promise<ConsumeSummary> {
    const {backend, reportIntervalMs, onReport} = this.options
    let reports: NodeJS.Timeout | undefined
    this.member.once('running', () => {
      reports = startReports({stats: this.stats, backend, lag: () => this.lag.total, stall: () => this.stall}, reportIntervalMs, onReport)
      this.lag.start(this.options.lagIntervalMs ?? DEFAULT_LAG_INTERVAL_MS)
      this.catchUp.start()
    })
    let result
    try {
      result = await this.member.run()
    } catch (error) {
      await this.lag.stop()
      // Exiting with the failure: closing is best effort, bounded, and a buffering backend that
      // failed has nothing durable to add.
      await settleWithin(backend.close(), CLOSE_AFTER_FAILURE_MS).catch(() => undefined)
      throw error
    } finally {
      clearInterval(reports)
      this.catchUp.stop()
    }
    // The lag once the last commits are in: what a restart of this group would read again.
    await this.lag.refresh()
    await this.lag.stop()
    const counted = await countDevices(backend)
    await backend.close().catch((error: Error) => this.options.log(`closing backend: ${error.message}`))
    return summarise(result.stats, result.reason, counted, this.lag.total)
  }
}

/** How often the group's lag is read, by default. */
export const DEFAULT_LAG_INTERVAL_MS = 5000

/** How long closing the backend may take when the consumer already stops with a failure. */
export const CLOSE_AFTER_FAILURE_MS = 5000
