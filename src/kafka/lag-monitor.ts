import {EventEmitter} from 'node:events'
import type {Admin, Kafka} from 'kafkajs'

/** One partition's lag: messages in the log that the group has not committed past. */
export interface PartitionLag {
  topic: string
  partition: number
  /** Log-start offset: the first message still kept. */
  start: number
  /** Log-end offset (high watermark). */
  end: number
  /** The group's committed offset (the next message to read); -1 when it has none. */
  committed: number
  lag: number
}

export interface LagMonitorEvents {
  lag: [partitions: PartitionLag[]]
  'lag-failed': [error: Error]
}

export interface LagMonitorOptions {
  kafka: Kafka
  topic: string
  groupId: string
  /** Where the group starts on a partition without a commit: its first message (true) or its end. */
  fromBeginning: boolean
}

/**
 * The consumer group's lag on a topic, as `kafka-consumer-groups --describe` shows it: per partition
 * the log-end offset minus the group's committed offset. Read with the admin API on a timer, so it
 * moves also when no message arrives (a stalled consumer, an outage of the backend). A partition
 * the group has not committed on counts from where the group would start on it.
 */
export class LagMonitor extends EventEmitter<LagMonitorEvents> {
  private admin?: Admin
  private timer?: NodeJS.Timeout
  private refreshing?: Promise<PartitionLag[] | undefined>
  /** The last lag read, or undefined before the first. */
  latest?: PartitionLag[]

  constructor(private readonly options: LagMonitorOptions) {
    super()
  }

  /** Sum over the partitions of the last lag read. */
  get total(): number | undefined {
    return this.latest?.reduce((sum, partition) => sum + partition.lag, 0)
  }

  /** Reads the lag now and then every `intervalMs`. */
  start(intervalMs: number): void {
    void this.refresh()
    this.timer = setInterval(() => void this.refresh(), intervalMs)
    this.timer.unref()
  }

  /** Reads the lag once (a read in progress is shared); undefined when it failed (`lag-failed` says why). */
  refresh(): Promise<PartitionLag[] | undefined> {
    this.refreshing ??= this.read().finally(() => (this.refreshing = undefined))
    return this.refreshing
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.refreshing
    await this.admin?.disconnect().catch(() => undefined)
    this.admin = undefined
  }

  private async read(): Promise<PartitionLag[] | undefined> {
    const {kafka, topic, groupId, fromBeginning} = this.options
    try {
      if (!this.admin) {
        const admin = kafka.admin({retry: {retries: 1}})
        await admin.connect()
        this.admin = admin
      }
      const [ends, [group]] = await Promise.all([this.admin.fetchTopicOffsets(topic), this.admin.fetchOffsets({groupId, topics: [topic]})])
      const lag = partitionLags(topic, ends, committedOffsets(group.partitions), fromBeginning)
      this.latest = lag
      this.emit('lag', lag)
      return lag
    } catch (error) {
      this.emit('lag-failed', error instanceof Error ? error : new Error(String(error)))
      return undefined
    }
  }
}

/** Partition → committed offset, from the admin API's answer; a partition without a commit is left out. */
export function committedOffsets(partitions: ReadonlyArray<{partition: number; offset: string}>): Map<number, number> {
  return new Map(partitions.filter((partition) => Number(partition.offset) >= 0).map((partition) => [partition.partition, Number(partition.offset)]))
}

/**
 * Each partition's lag, in partition order: its log-end offset minus the group's committed offset.
 * A partition without a commit counts from where the group would start on it: its log start
 * (`fromBeginning`) or its end. Offsets are counted as Kafka counts them: transaction markers past
 * the committed offset count too (consumers commit past the markers that end a partition).
 */
export function partitionLags(
  topic: string,
  ends: ReadonlyArray<{partition: number; low: string; high: string}>,
  committed: ReadonlyMap<number, number>,
  fromBeginning: boolean,
): PartitionLag[] {
  return ends
    .map(({partition, high, low}) => {
      const start = Number(low)
      const end = Number(high)
      const offset = committed.get(partition) ?? -1
      const from = offset >= 0 ? offset : fromBeginning ? start : end
      return {topic, partition, start, end, committed: offset, lag: Math.max(0, end - from)}
    })
    .sort((a, b) => a.partition - b.partition)
}
