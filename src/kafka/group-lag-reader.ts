import type {Admin} from 'kafkajs'
import {withTimeout} from '../util/async.js'
import {formatDuration} from '../util/duration.js'
import type {Kafka} from './client.js'
import {type GroupLag, LagTimeoutError, readGroupLag, UnknownGroupError, UnknownTopicError} from './group-lag.js'

export interface GroupLagReaderOptions {
  /** Creates a Kafka client: at the first read, and again after a read failed. */
  createKafka: () => Kafka
  /** Bootstrap brokers as given, for messages. */
  brokers: string
  group: string
  /** Only this topic; undefined: every topic the group has committed offsets for or members assigned to. */
  topic?: string
  /** A read (connect included) gives up after this long with a {@link LagTimeoutError}. */
  timeoutMs: number
}

/**
 * Reads a consumer group's lag again and again over one admin connection (`ipc serve`): connected
 * at the first read, and replaced after a read fails, so a broker that comes back is found whether
 * or not the client would have reconnected by itself. A group or topic that does not exist is an
 * answer, not a failure of the connection, and keeps it.
 */
export class GroupLagReader {
  private admin: Admin | undefined
  private connecting: Promise<void> | undefined
  private readonly closing = new Set<Promise<void>>()

  constructor(private readonly options: GroupLagReaderOptions) {}

  async read(): Promise<GroupLag> {
    const {group, topic, timeoutMs, brokers} = this.options
    if (!this.admin) {
      const admin = this.options.createKafka().admin()
      this.admin = admin
      this.connecting = admin.connect()
    }
    const admin = this.admin
    const connecting = this.connecting as Promise<void>
    try {
      return await withTimeout(
        connecting.then(() => readGroupLag(admin, group, topic)),
        timeoutMs,
        () => new LagTimeoutError(`no answer from Kafka at ${brokers} within ${formatDuration(timeoutMs)}`),
      )
    } catch (error) {
      if (!(error instanceof UnknownGroupError || error instanceof UnknownTopicError)) this.discard(admin)
      throw error
    }
  }

  /** Disconnects; resolves once every admin being closed has closed. */
  async close(): Promise<void> {
    if (this.admin) this.discard(this.admin)
    await Promise.all(this.closing)
  }

  private discard(admin: Admin): void {
    if (this.admin !== admin) return
    this.admin = undefined
    this.connecting = undefined
    const closing = withTimeout(admin.disconnect(), this.options.timeoutMs, () => new LagTimeoutError('disconnect timed out')).catch(() => {})
    this.closing.add(closing)
    void closing.finally(() => this.closing.delete(closing))
  }
}
