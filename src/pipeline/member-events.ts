import type {InvalidReason} from '../events/event.js'
import type {StalledPartition} from './catch-up.js'
import type {ConsumeStats, StopReason} from './consume-stats.js'

export type Readiness = {ready: true} | {ready: false; reason: string}

/**
 * What a member and the consumers made of members tell as they work (instrumentation events, as
 * a kafkajs consumer's): metrics and other observers listen instead of being called from inside.
 */
export interface PipelineEvents {
  /** One fetched batch was validated and handed to the backend (`invalid` by reason, only reasons seen). */
  'batch-processed': [
    batch: {topic: string; partition: number; processed: number; valid: number; invalid: Partial<Record<InvalidReason, number>>; deadLettered: number},
  ]
  /** Offsets were committed to the group. */
  committed: [offsets: Array<{topic: string; partition: number; offset: string}>]
  /** This member joined the group (again) and holds `partitions` partitions (`assigned` of the topic). */
  'group-joined': [membership: {memberId: string; leader: boolean; partitions: number; assigned: number[]}]
  /** The group is rebalancing: this member holds nothing until it has joined again. */
  rebalancing: []
  /** With `--until-idle`: the consumer has been caught up for that long (true), or has work again (false). */
  idle: [idle: boolean]
  /** A partition was read up to `nextOffset` (also past control records and aborted events). */
  'read-to': [position: {partition: number; nextOffset: string}]
  /** The Kafka client failed and restarts (a lost connection, a leader gone). */
  'kafka-error': [message: string]
  /** Partitions with events left to read that do not advance; empty when they move again. */
  stalled: [partitions: StalledPartition[]]
}

export interface MemberEvents extends PipelineEvents {
  /** Subscribed and fetching (or holding its partitions paused). */
  running: []
}

/** The events a member forwards to whoever speaks for it (a pipeline, a pool). */
export const MEMBER_EVENTS: ReadonlyArray<keyof PipelineEvents> = ['batch-processed', 'committed', 'group-joined', 'rebalancing', 'read-to', 'kafka-error']

/** The consumer stopped because of a fault it could not get past (the cause is attached). */
export class ConsumeError extends Error {
  override name = 'ConsumeError'
}

/** A pool's worker failed: its error's line and the exit code it gave it (errors cross threads without their class). */
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

/** What a member's run ends with: its stats and why it stopped. */
export interface MemberResult {
  stats: ConsumeStats
  reason: StopReason
}
