import {Counter, Gauge, Histogram, type Registry} from 'prom-client'
import type {CountBackend} from '../backends/backend.js'
import {INVALID_REASONS} from '../events/event.js'
import type {EventEmitter} from 'node:events'
import type {LagMonitor} from '../kafka/lag-monitor.js'
import type {PipelineEvents} from '../pipeline/consume-pipeline.js'
import type {Readiness} from '../pipeline/member-events.js'
import {processRegistry} from './registry.js'

/** What the metrics listen to: a ConsumePipeline, or a ConsumerPool speaking for its workers. */
export type MetricsPipeline = Pick<EventEmitter<PipelineEvents>, 'on'> & {lag: Pick<LagMonitor, 'on'>; readiness(): Readiness}
export type MetricsBackend = Pick<CountBackend, 'name' | 'unwrittenEvents' | 'on'>
/** What the consumer reads, as the labels of `ipc_consumer_info`. */
export interface ConsumerIdentity {
  group: string
  topic: string
}

const WRITE_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/**
 * The Prometheus metrics of `ipc consume`, fed by the instrumentation events of the pipeline, the
 * backend and the lag monitor (nothing in the hot path calls into here), plus the process metrics.
 */
export class ConsumerMetrics {
  readonly registry: Registry = processRegistry()

  constructor(pipeline: MetricsPipeline, backend: MetricsBackend, identity: ConsumerIdentity) {
    const registers = [this.registry]
    const labels = {backend: backend.name}
    new Gauge({
      name: 'ipc_consumer_info',
      help: 'Always 1; its labels name the consumer group, the topic and the backend of this process.',
      labelNames: ['group', 'topic', 'backend'],
      registers,
    }).set({group: identity.group, topic: identity.topic, backend: backend.name}, 1)
    new Gauge({
      name: 'ipc_consumer_ready',
      help: '1 when /readyz answers 200 (connected to the backend, in the group, writes not failing, no stall), else 0.',
      registers,
      collect() {
        this.set(pipeline.readiness().ready ? 1 : 0)
      },
    })
    const consumed = new Counter({name: 'ipc_consumer_events_total', help: 'Messages read from Kafka and processed.', registers})
    const valid = new Counter({name: 'ipc_consumer_events_valid_total', help: 'Valid events handed to the backend.', registers})
    const invalid = new Counter({
      name: 'ipc_consumer_events_invalid_total',
      help: 'Invalid messages skipped, by reason.',
      labelNames: ['reason'],
      registers,
    })
    const deadLettered = new Counter({name: 'ipc_consumer_events_dead_lettered_total', help: 'Invalid messages produced to the dead-letter topic.', registers})
    for (const reason of INVALID_REASONS) invalid.inc({reason}, 0)
    pipeline.on('batch-processed', (batch) => {
      consumed.inc(batch.processed)
      valid.inc(batch.valid)
      for (const [reason, count] of Object.entries(batch.invalid)) invalid.inc({reason}, count)
      deadLettered.inc(batch.deadLettered)
    })

    const writes = new Counter({
      name: 'ipc_backend_writes_total',
      help: 'Successful backend writes (inserts, Redis pipelines).',
      labelNames: ['backend'],
      registers,
    })
    const writtenEvents = new Counter({
      name: 'ipc_backend_written_events_total',
      help: 'Events written durably by the backend.',
      labelNames: ['backend'],
      registers,
    })
    const writeSeconds = new Histogram({
      name: 'ipc_backend_write_duration_seconds',
      help: 'Duration of the successful attempt of each backend write.',
      labelNames: ['backend'],
      buckets: WRITE_BUCKETS_SECONDS,
      registers,
    })
    const writeFailures = new Counter({
      name: 'ipc_backend_write_failures_total',
      help: 'Failed backend write attempts; each is retried with backoff.',
      labelNames: ['backend'],
      registers,
    })
    const giveUps = new Counter({
      name: 'ipc_backend_write_give_ups_total',
      help: 'Backend writes given up (retry time used up or a permanent refusal); the consumer stops.',
      labelNames: ['backend'],
      registers,
    })
    new Gauge({
      name: 'ipc_backend_unwritten_events',
      help: 'Events taken from Kafka and not yet written durably (buffered or in a write in flight).',
      labelNames: ['backend'],
      registers,
      collect() {
        this.set(labels, backend.unwrittenEvents)
      },
    })
    for (const counter of [writes, writtenEvents, writeFailures, giveUps]) counter.inc(labels, 0)
    backend.on('written', (events, durationMs) => {
      writes.inc(labels)
      writtenEvents.inc(labels, events)
      writeSeconds.observe(labels, durationMs / 1000)
    })
    backend.on('write-failed', () => writeFailures.inc(labels))
    backend.on('write-gave-up', () => giveUps.inc(labels))

    const commits = new Counter({name: 'ipc_consumer_commits_total', help: 'Offset commits to the consumer group.', registers})
    const committedOffset = new Gauge({
      name: 'ipc_consumer_committed_offset',
      help: 'Offset committed by this consumer (the next message to read), by partition.',
      labelNames: ['topic', 'partition'],
      registers,
    })
    pipeline.on('committed', (offsets) => {
      commits.inc()
      for (const {topic, partition, offset} of offsets) committedOffset.set({topic, partition: String(partition)}, Number(offset))
    })

    const lag = new Gauge({
      name: 'ipc_consumer_lag',
      help: "Messages the group has not committed past, by partition (log-end offset minus the group's committed offset), read every few seconds.",
      labelNames: ['topic', 'partition'],
      registers,
    })
    const lagReads = new Counter({name: 'ipc_consumer_lag_read_failures_total', help: 'Failed reads of the lag from the broker.', registers})
    pipeline.lag.on('lag', (partitions) => {
      for (const partition of partitions) lag.set({topic: partition.topic, partition: String(partition.partition)}, partition.lag)
    })
    pipeline.lag.on('lag-failed', () => lagReads.inc())

    const rebalances = new Counter({name: 'ipc_consumer_rebalances_total', help: 'Group rebalances this member took part in.', registers})
    const member = new Gauge({name: 'ipc_consumer_group_member', help: '1 while this process is a member of the group with its partitions.', registers})
    const assigned = new Gauge({name: 'ipc_consumer_assigned_partitions', help: 'Partitions assigned to this member.', registers})
    pipeline.on('group-joined', (membership) => {
      member.set(1)
      assigned.set(membership.partitions)
    })
    pipeline.on('rebalancing', () => {
      rebalances.inc()
      member.set(0)
      assigned.set(0)
    })
  }
}
