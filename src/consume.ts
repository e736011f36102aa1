import type {Consumer, EachBatchPayload, IHeaders, Kafka, KafkaMessage, Message, Producer} from 'kafkajs'
import type {CountBackend, DeviceEvent} from './backends/backend.js'
import {INVALID_REASONS, type InvalidReason, parseEvent} from './event.js'
import {roundRobinAssigner} from './kafka.js'
import {RateLimitedLog} from './rate-limited-log.js'

export interface ConsumeOptions {
  kafka: Kafka
  topic: string
  groupId: string
  /** Where a group without committed offsets starts: the earliest offset (true) or new messages only. */
  fromBeginning: boolean
  backend: CountBackend
  /** See `roundRobinAssigner` in kafka.ts. */
  assignDelayMs?: number
  sessionTimeoutMs?: number
  /** Stop cleanly once no message has arrived for this long (after joining the group). */
  untilIdleMs?: number
  /** Stop cleanly after processing this many messages. */
  maxMessages?: number
  /** Invalid messages are produced here with the reason in headers, before their offsets are committed. */
  dlqTopic?: string
  reportIntervalMs: number
  onReport?: (report: ConsumeReport) => void
  /** Warnings and errors, one line each. */
  log: (line: string) => void
}

export type StopReason = 'signal' | 'idle' | 'max-messages' | 'error'

export interface ConsumeStats {
  processed: number
  valid: number
  invalid: number
  invalidByReason: Record<InvalidReason, number>
  deadLettered: number
  /** Next offset to read, per partition, as committed to the group. */
  committed: Record<number, string>
  startedAt: number
  joinedAt?: number
  firstMessageAt?: number
  lastMessageAt?: number
}

export interface ConsumeReport {
  totalDevices?: number
  countError?: string
  eventsPerSecond: number
  stats: ConsumeStats
}

export interface ConsumeSummary extends ConsumeReport {
  reason: StopReason
  elapsedMs: number
  /** Time from start until the group assigned partitions. */
  joinMs?: number
  /** Events/s from the first to the last message processed. */
  steadyEventsPerSecond: number
}

/** The consumer stopped because of a fault it could not get past (the cause is attached). */
export class ConsumeError extends Error {
  override name = 'ConsumeError'
}

const DLQ_HEADER_PREFIX = 'ipc.error.'

/**
 * Kafka consumer group → validate → parse timestamp → count backend.
 *
 * A partition's offset is committed only after the backend reported durable every event up to it:
 * each batch's commit waits for the backend receipt of that batch and for the partition's previous
 * commit, so commits advance in order even when a buffering backend writes much later.
 */
export class ConsumePipeline {
  readonly stats: ConsumeStats
  private consumer?: Consumer
  private producer?: Producer
  private readonly commitChains = new Map<number, Promise<void>>()
  private readonly invalidLog: RateLimitedLog
  private inFlightBatches = 0
  private inFlightDrained?: () => void
  private stopReason?: StopReason
  private failure?: Error
  private stopRequested?: () => void
  private readonly stopSignal: Promise<void>

  constructor(private readonly options: ConsumeOptions) {
    this.stats = {
      processed: 0,
      valid: 0,
      invalid: 0,
      invalidByReason: Object.fromEntries(INVALID_REASONS.map((reason) => [reason, 0])) as Record<InvalidReason, number>,
      deadLettered: 0,
      committed: {},
      startedAt: Date.now(),
    }
    this.invalidLog = new RateLimitedLog(options.log)
    this.stopSignal = new Promise((resolve) => (this.stopRequested = resolve))
  }

  get stopping(): boolean {
    return this.stopReason !== undefined
  }

  /** Asks for a clean stop: stop fetching, flush, commit, disconnect. Safe to call more than once. */
  stop(reason: StopReason = 'signal'): void {
    if (this.stopReason) return
    this.stopReason = reason
    this.stopRequested?.()
  }

  private fail(error: Error): void {
    this.failure ??= error
    this.stop('error')
  }

  /** Runs until stopped; resolves with the summary, rejects with ConsumeError on an unrecoverable fault. */
  async run(): Promise<ConsumeSummary> {
    const {kafka, topic, groupId, options} = {...this.options, options: this.options}
    await options.backend.connect()
    const consumer = kafka.consumer({
      groupId,
      partitionAssigners: [roundRobinAssigner(options.assignDelayMs)],
      sessionTimeout: options.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: Math.max(100, Math.floor((options.sessionTimeoutMs ?? 30_000) / 10)),
      allowAutoTopicCreation: true,
      // A fetch long-poll holds a clean stop until it returns; keep it short.
      maxWaitTimeInMs: 500,
    })
    this.consumer = consumer
    if (options.dlqTopic) {
      this.producer = kafka.producer({allowAutoTopicCreation: true, idempotent: false})
      await this.producer.connect()
    }
    consumer.on(consumer.events.GROUP_JOIN, () => {
      this.stats.joinedAt = Date.now()
    })
    consumer.on(consumer.events.CRASH, (event) => {
      const {error, restart} = event.payload as {error: Error; restart: boolean}
      if (restart) options.log(`consumer restarting after error: ${error.message}`)
      else this.fail(new ConsumeError(`consumer crashed: ${error.message}`, {cause: error}))
    })

    const timers: NodeJS.Timeout[] = []
    try {
      await consumer.connect()
      await consumer.subscribe({topic, fromBeginning: options.fromBeginning})
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: async (payload) => this.handleBatch(payload),
      })
      timers.push(...this.startTimers())
      await this.stopSignal
    } catch (error) {
      this.fail(error instanceof Error ? error : new Error(String(error)))
    } finally {
      for (const timer of timers) clearInterval(timer)
    }
    return this.shutDown(consumer)
  }

  private startTimers(): NodeJS.Timeout[] {
    const timers: NodeJS.Timeout[] = []
    const {untilIdleMs, reportIntervalMs, onReport} = this.options
    if (untilIdleMs !== undefined) {
      timers.push(
        setInterval(() => {
          const {joinedAt, lastMessageAt} = this.stats
          if (joinedAt === undefined || this.inFlightBatches > 0) return
          if (Date.now() - Math.max(joinedAt, lastMessageAt ?? 0) >= untilIdleMs) this.stop('idle')
        }, Math.min(250, Math.max(10, untilIdleMs / 4))),
      )
    }
    if (onReport && reportIntervalMs > 0) {
      let lastProcessed = 0
      let lastAt = Date.now()
      timers.push(
        setInterval(async () => {
          const now = Date.now()
          const eventsPerSecond = ((this.stats.processed - lastProcessed) * 1000) / Math.max(1, now - lastAt)
          lastProcessed = this.stats.processed
          lastAt = now
          onReport({...(await this.countDevices()), eventsPerSecond, stats: this.stats})
        }, reportIntervalMs),
      )
    }
    return timers
  }

  private async countDevices(): Promise<{totalDevices?: number; countError?: string}> {
    try {
      return {totalDevices: await this.options.backend.count()}
    } catch (error) {
      return {countError: (error as Error).message}
    }
  }

  private async handleBatch({batch, resolveOffset, heartbeat, isRunning, isStale}: EachBatchPayload): Promise<void> {
    if (this.stopping) return
    this.inFlightBatches++
    try {
      const events: DeviceEvent[] = []
      const deadLetters: Message[] = []
      const {maxMessages, dlqTopic} = this.options
      let lastOffset: string | undefined
      for (const message of batch.messages) {
        if (!isRunning() || isStale()) break
        if (maxMessages !== undefined && this.stats.processed >= maxMessages) break
        const result = parseEvent(message.value)
        this.stats.processed++
        if (result.ok) {
          this.stats.valid++
          events.push(result.event)
        } else {
          this.stats.invalid++
          this.stats.invalidByReason[result.reason]++
          this.invalidLog.log(`invalid ${result.reason}`, `invalid event (${result.reason}) at ${batch.topic}[${batch.partition}]@${message.offset}: ${result.detail}`)
          if (dlqTopic) deadLetters.push(deadLetter(message, batch.topic, batch.partition, result.reason, result.detail))
        }
        lastOffset = message.offset
      }
      if (lastOffset === undefined) return
      const now = Date.now()
      this.stats.firstMessageAt ??= now
      this.stats.lastMessageAt = now

      if (deadLetters.length > 0 && this.producer && dlqTopic) {
        await this.producer.send({topic: dlqTopic, messages: deadLetters, acks: -1})
        this.stats.deadLettered += deadLetters.length
      }
      const receipt = await this.options.backend.add(events)
      resolveOffset(lastOffset)
      this.chainCommit(batch.topic, batch.partition, (BigInt(lastOffset) + 1n).toString(), receipt.durable)
      if (maxMessages !== undefined && this.stats.processed >= maxMessages) this.stop('max-messages')
      await heartbeat()
    } catch (error) {
      this.fail(new ConsumeError(`processing ${batch.topic}[${batch.partition}] failed: ${(error as Error).message}`, {cause: error}))
    } finally {
      this.inFlightBatches--
      if (this.inFlightBatches === 0) this.inFlightDrained?.()
    }
  }

  private chainCommit(topic: string, partition: number, offset: string, durable: Promise<void>): void {
    const previous = this.commitChains.get(partition) ?? Promise.resolve()
    const next = Promise.all([previous, durable]).then(async () => {
      if (this.failure) return
      try {
        await this.consumer?.commitOffsets([{topic, partition, offset}])
        this.stats.committed[partition] = offset
      } catch (error) {
        // The partition may have moved to another member in a rebalance: its new owner re-reads
        // from the last commit, which at worst counts a device again (harmless for a distinct count).
        this.options.log(`commit of ${topic}[${partition}]@${offset} failed: ${(error as Error).message}`)
      }
    })
    this.commitChains.set(partition, next)
  }

  private async shutDown(consumer: Consumer): Promise<ConsumeSummary> {
    const reason = this.stopReason ?? 'signal'
    try {
      consumer.pause([{topic: this.options.topic}])
    } catch {
      // not running yet: nothing to pause
    }
    if (this.inFlightBatches > 0) await new Promise<void>((resolve) => (this.inFlightDrained = resolve))
    if (!this.failure) {
      try {
        await this.options.backend.flush()
        await Promise.all(this.commitChains.values())
      } catch (error) {
        this.failure = new ConsumeError(`final flush failed, offsets left uncommitted: ${(error as Error).message}`, {cause: error})
      }
    }
    this.invalidLog.flush()
    await consumer.disconnect().catch((error: Error) => this.options.log(`disconnect: ${error.message}`))
    await this.producer?.disconnect().catch(() => undefined)
    const counted = await this.countDevices()
    await this.options.backend.close().catch((error: Error) => this.options.log(`closing backend: ${error.message}`))
    if (this.failure) throw this.failure
    const elapsedMs = Date.now() - this.stats.startedAt
    const {firstMessageAt, lastMessageAt, joinedAt} = this.stats
    const activeMs = firstMessageAt !== undefined && lastMessageAt !== undefined ? lastMessageAt - firstMessageAt : 0
    return {
      reason,
      ...counted,
      stats: this.stats,
      elapsedMs,
      joinMs: joinedAt === undefined ? undefined : joinedAt - this.stats.startedAt,
      eventsPerSecond: (this.stats.processed * 1000) / Math.max(1, elapsedMs),
      steadyEventsPerSecond: activeMs > 0 ? (this.stats.processed * 1000) / activeMs : 0,
    }
  }
}

function deadLetter(message: KafkaMessage, topic: string, partition: number, reason: string, detail: string): Message {
  return {
    key: message.key,
    value: message.value,
    headers: {
      ...(message.headers as IHeaders | undefined),
      [`${DLQ_HEADER_PREFIX}reason`]: reason,
      [`${DLQ_HEADER_PREFIX}detail`]: detail,
      [`${DLQ_HEADER_PREFIX}topic`]: topic,
      [`${DLQ_HEADER_PREFIX}partition`]: String(partition),
      [`${DLQ_HEADER_PREFIX}offset`]: message.offset,
    },
  }
}
