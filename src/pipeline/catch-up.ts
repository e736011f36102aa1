import {EventEmitter} from 'node:events'
import type {LagMonitor, PartitionLag} from '../kafka/lag-monitor.js'
import {formatDuration} from '../util/duration.js'

/** A partition with events the consumer has not read, and how long its position has not moved. */
export interface StalledPartition {
  partition: number
  unread: number
  forMs: number
}

/**
 * Partitions whose events do not arrive, or a group lag that cannot be read while nothing arrives,
 * stopped the run after `--max-retry-time` (exit 3).
 */
export class KafkaStallError extends Error {
  override name = 'KafkaStallError'
  readonly retriable = true
  constructor(
    readonly topic: string,
    readonly partitions: readonly StalledPartition[],
    limitMs: number,
    reason: string | undefined,
  ) {
    const unread = partitions.reduce((sum, partition) => sum + partition.unread, 0)
    const what =
      partitions.length > 0
        ? `${describeStall(topic, partitions)} (${unread} events unread${reason ? `; last Kafka error: ${reason}` : ''})`
        : `no event arrived and the group's lag on ${topic} could not be read${reason ? ` (${reason})` : ''}`
    super(`gave up after --max-retry-time ${formatDuration(limitMs)}: ${what}; offsets from there on stay uncommitted`)
  }
}

export function describeStall(topic: string, partitions: readonly StalledPartition[]): string {
  const names = partitions.map((partition) => `${topic}[${partition.partition}]`).join(', ')
  const longest = Math.max(...partitions.map((partition) => partition.forMs))
  return `${partitions.length === 1 ? 'partition' : 'partitions'} ${names} not advancing for ${formatDuration(longest)}`
}

/**
 * Where a consumer stands on the partitions it holds against the log's end, from the positions it
 * read to and the group's lag: caught up, behind, or stalled (behind, and the position has not
 * moved for a while).
 */
export class PartitionPositions {
  /** Next offset to read, per partition, as far as batches have been read. */
  private readonly positions = new Map<number, bigint>()
  /** Partitions this consumer holds; undefined: all of the topic's. */
  private held?: ReadonlySet<number>
  /** Per partition, its position when it was last seen behind, and since when it has been there. */
  private readonly still = new Map<number, {position: bigint; since: number}>()
  /** When a batch last moved a position forward. */
  lastProgressAt = Date.now()

  hold(partitions: readonly number[] | undefined): void {
    this.held = partitions && new Set(partitions)
    this.still.clear()
  }

  read(partition: number, nextOffset: bigint): void {
    const known = this.positions.get(partition)
    if (known === undefined || nextOffset > known) {
      this.positions.set(partition, nextOffset)
      this.lastProgressAt = Date.now()
    }
  }

  /** Unread events of each held partition behind the log's end in `lag` (the group's commits, or further where read). */
  behind(lag: readonly PartitionLag[]): Array<{partition: number; unread: number; position: bigint}> {
    const behind: Array<{partition: number; unread: number; position: bigint}> = []
    for (const partition of lag) {
      if (this.held && !this.held.has(partition.partition)) continue
      const read = this.positions.get(partition.partition)
      const committedOrStart = BigInt(partition.end - partition.lag)
      const position = read !== undefined && read > committedOrStart ? read : committedOrStart
      const unread = Number(BigInt(partition.end) - position)
      if (unread > 0) behind.push({partition: partition.partition, unread, position})
    }
    return behind
  }

  /** Takes a lag reading; the partitions behind whose position has not moved for `afterMs`. */
  stalled(lag: readonly PartitionLag[], now: number, afterMs: number): StalledPartition[] {
    const stalled: StalledPartition[] = []
    const behind = this.behind(lag)
    const seen = new Set<number>()
    for (const {partition, unread, position} of behind) {
      seen.add(partition)
      const still = this.still.get(partition)
      if (!still || still.position !== position) this.still.set(partition, {position, since: now})
      else if (now - still.since >= afterMs) stalled.push({partition, unread, forMs: now - still.since})
    }
    for (const partition of this.still.keys()) if (!seen.has(partition)) this.still.delete(partition)
    return stalled
  }

  /** Forget how long partitions have been still (the consumer was busy with its backend, not waiting for Kafka). */
  resetStillness(): void {
    this.still.clear()
  }
}

export interface CatchUpEvents {
  /** Silent for `--until-idle` and nothing left to read on any held partition. */
  'caught-up': []
  /** Partitions behind whose events do not arrive; empty once they move again. */
  stalled: [partitions: StalledPartition[]]
  /** A stall lasted `--max-retry-time`. */
  'gave-up': [error: KafkaStallError]
}

export interface CatchUpOptions {
  topic: string
  lag: LagMonitor
  positions: PartitionPositions
  /** `--until-idle`: how long the consumer must be silent and caught up. */
  untilIdleMs?: number
  /** `--max-retry-time`: how long a stall may last. */
  stallLimitMs?: number
  /** A partition behind that has not moved for this long is stalled. Default 10 s. */
  stallAfterMs?: number
  /** Whether the consumer has had no message for `ms` (it is a member, fetches, holds no batch). */
  silentFor: (ms: number) => boolean
  /** Whether waiting is the backend's doing (writes failing, a batch held): not a Kafka stall. */
  busy: () => boolean
}

const CHECK_INTERVAL_MS = 250
/** A lag read for the idle check is at most this old. */
const FRESH_LAG_MS = 1000
export const DEFAULT_STALL_AFTER_MS = 10_000

/**
 * Decides `--until-idle` and stalls from the group's lag: silence is idleness only when a fresh lag
 * reading shows nothing left to read on the partitions held (a leader that is down or still loading
 * answers fetches with nothing, too); while the lag cannot be read it is not idle either. A partition
 * behind whose position does not move is a stall: reported, and with `stallLimitMs` ended.
 */
export class CatchUpWatch extends EventEmitter<CatchUpEvents> {
  private timer?: NodeJS.Timeout
  private lagReadAt = 0
  private checking = false
  private current: StalledPartition[] = []
  /** The last Kafka client error, for a stall's reason. */
  private lastError?: string
  /** Since when reading the group's lag fails; undefined while it works. */
  private lagFailingSince?: number

  constructor(private readonly options: CatchUpOptions) {
    super()
    options.lag.on('lag', (lag) => {
      this.lagReadAt = Date.now()
      this.lagFailingSince = undefined
      this.observe(lag)
    })
    options.lag.on('lag-failed', (error) => {
      this.lagFailingSince ??= Date.now()
      this.lastError = `reading the group's lag: ${error.message}`
    })
  }

  /**
   * The stall in words, for the report line and the readiness probe: partitions behind that do not
   * move, or a lag that has not been readable for a while with nothing arriving; undefined otherwise.
   */
  get stallDescription(): string | undefined {
    const {topic, positions, stallAfterMs = DEFAULT_STALL_AFTER_MS} = this.options
    if (this.current.length > 0) return `${describeStall(topic, this.current)}${this.lastErrorNote()}`
    const now = Date.now()
    if (this.lagFailingSince === undefined || now - this.lagFailingSince < stallAfterMs || now - positions.lastProgressAt < stallAfterMs) return undefined
    return `lag of ${topic} unknown and no event for ${formatDuration(now - this.lagFailingSince)} (${this.lastError})`
  }

  /** A Kafka client error seen (a restart, a refused connection), kept as the likely reason of a stall. */
  kafkaError(message: string): void {
    this.lastError = message
  }

  /** The log line for a `stalled` event: the partitions and their unread events, or that all move again. */
  stallLine(partitions: readonly StalledPartition[]): string {
    if (partitions.length === 0) return 'kafka: every partition is advancing again'
    const unread = partitions.reduce((sum, partition) => sum + partition.unread, 0)
    return `kafka: ${describeStall(this.options.topic, partitions)} with ${unread} events unread${this.lastErrorNote()}; still trying`
  }

  private lastErrorNote(): string {
    return this.lastError ? ` (last Kafka error: ${this.lastError})` : ''
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), CHECK_INTERVAL_MS)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
  }

  private observe(lag: readonly PartitionLag[]): void {
    const {positions, busy, stallAfterMs = DEFAULT_STALL_AFTER_MS, stallLimitMs, topic} = this.options
    if (busy()) {
      positions.resetStillness()
      this.setStalled([])
      return
    }
    const stalled = positions.stalled(lag, Date.now(), stallAfterMs)
    this.setStalled(stalled)
    if (stallLimitMs !== undefined) {
      const over = stalled.filter((partition) => partition.forMs >= stallLimitMs)
      if (over.length > 0) this.emit('gave-up', new KafkaStallError(topic, over, stallLimitMs, this.lastError))
    }
  }

  private setStalled(stalled: StalledPartition[]): void {
    if (stalled.length === 0 && this.current.length === 0) return
    this.current = stalled
    this.emit('stalled', stalled)
  }

  private async check(): Promise<void> {
    const {untilIdleMs, silentFor, lag, positions, stallLimitMs, busy, topic} = this.options
    if (this.checking) return
    this.checking = true
    try {
      const now = Date.now()
      if (
        stallLimitMs !== undefined &&
        this.lagFailingSince !== undefined &&
        now - this.lagFailingSince >= stallLimitMs &&
        now - positions.lastProgressAt >= stallLimitMs &&
        !busy()
      ) {
        this.emit('gave-up', new KafkaStallError(topic, [], stallLimitMs, this.lastError))
        return
      }
      const silent = untilIdleMs !== undefined && silentFor(untilIdleMs)
      // While silent, read the lag often enough to decide; otherwise the monitor's own timer reads it.
      if (silent || this.current.length > 0) {
        if (Date.now() - this.lagReadAt >= FRESH_LAG_MS) await lag.refresh()
      }
      if (!silent || !lag.latest || Date.now() - this.lagReadAt >= FRESH_LAG_MS * 2) return
      // Still silent after the reading, and nothing left to read: caught up.
      if (silentFor(untilIdleMs) && positions.behind(lag.latest).length === 0) this.emit('caught-up')
    } finally {
      this.checking = false
    }
  }
}
