import {EventEmitter} from 'node:events'

/** One partition's next offset to read, as committed to the group. */
export interface TopicPartitionOffset {
  topic: string
  partition: number
  offset: string
}

export interface OffsetCommitterEvents {
  /** A commit request carried these offsets and the broker took it. */
  committed: [offsets: TopicPartitionOffset[]]
  /** A commit request failed; the offsets are committed again with the next durable batch. */
  'commit-failed': [error: Error, offsets: TopicPartitionOffset[]]
  /** A batch's events never became durable: its offset and every later one of the partition stay uncommitted. */
  'durable-failed': [error: unknown, topic: string, partition: number]
}

/**
 * Commits a partition's offsets only once the backend holds every event up to them, in order per
 * partition, with commits coalesced.
 *
 * Each batch's offset waits for that batch's durability and for the partition's previous batch, so
 * commits advance in order even when a buffering backend writes much later. One commit request at
 * a time carries the latest durable offset of every partition, so a stream of small batches does
 * not cost a broker round trip each (as Kafka Connect commits periodically rather than per record).
 */
export class OffsetCommitter extends EventEmitter<OffsetCommitterEvents> {
  private readonly chains = new Map<number, Promise<void>>()
  /** Durable offsets not yet sent, by partition: the latest wins. */
  private readonly committable = new Map<number, TopicPartitionOffset>()
  private committing?: Promise<void>
  private halted = false

  constructor(private readonly commit: (offsets: TopicPartitionOffset[]) => Promise<void>) {
    super()
  }

  /** Commits `offset` of the partition once `durable` resolved and every earlier offset of it was committable. */
  add(topic: string, partition: number, offset: string, durable: Promise<void>): void {
    const previous = this.chains.get(partition) ?? Promise.resolve()
    const next = Promise.all([previous, durable]).then(
      () => {
        if (this.halted) return
        this.committable.set(partition, {topic, partition, offset})
        this.commitCoalesced()
      },
      (error: unknown) => {
        this.emit('durable-failed', error, topic, partition)
      },
    )
    this.chains.set(partition, next)
  }

  /** Sends nothing more: the consumer stops with a failure and leaves the rest uncommitted. */
  halt(): void {
    this.halted = true
    this.committable.clear()
  }

  /** Resolves once every offset added so far has been sent (or halted). */
  async settled(): Promise<void> {
    await Promise.all(this.chains.values())
    while (this.committing) await this.committing
  }

  private commitCoalesced(): void {
    if (this.committing || this.committable.size === 0 || this.halted) return
    const offsets = [...this.committable.values()]
    this.committable.clear()
    this.committing = (async () => {
      try {
        await this.commit(offsets)
        this.emit('committed', offsets)
      } catch (error) {
        this.emit('commit-failed', error instanceof Error ? error : new Error(String(error)), offsets)
      } finally {
        this.committing = undefined
      }
      this.commitCoalesced()
    })()
  }
}
