import {Flags} from '@oclif/core'
import {IpcCommand} from '../cli/base-command.js'
import {BackendGaveUpError, type CountBackend} from '../backends/backend.js'
import {createBackend} from '../backends/registry.js'
import {backendOptionsFromFlags, backendScalingFlags, backendWriteFlags} from '../cli/backend-flags.js'
import {ConsumePipeline, type ConsumeReport, type ConsumeSummary} from '../pipeline/consume-pipeline.js'
import {ConsumerPool, ConsumerPoolError} from '../pipeline/consumer-pool.js'
import type {BackendOptions} from '../backends/registry.js'
import {formatDuration} from '../util/duration.js'
import {errorChain} from '../util/errors.js'
import {limitHeapGrowth} from '../util/heap-growth.js'
import {EXIT_FAILURE, EXIT_USAGE} from '../cli/exit-codes.js'
import {backendFlags, compressionFlag, durationDefault, durationFlag, consumerMemoryFlags, kafkaFlags, kafkaLogLevelFlags} from '../cli/flags.js'
import {
  DEFAULT_BATCH_SIZE,
  DEFAULT_FLUSH_INTERVAL_MS,
  DEFAULT_REPORT_INTERVAL_MS,
  DEFAULT_SESSION_TIMEOUT_MS,
  DEFAULT_WRITE_TIMEOUT_MS,
} from '../cli/defaults.js'
import {exitSoonIfHeldOpen, onStopSignals} from '../cli/signals.js'
import {kafkaSecurityFlags, kafkaSecurityFromFlags} from '../cli/kafka-security-flags.js'
import {webServerFlags, webServerOptionsFromFlags} from '../cli/web-flags.js'
import {createKafka, type Kafka, type KafkaSettings, parseBrokers} from '../kafka/client.js'
import {startGroupAtTime} from '../kafka/start-offsets.js'
import {parseTimeBound} from '../query/count-query.js'
import {formatIsoMillis} from '../events/timestamp.js'
import {formatInt, isInteractive, ProgressLine, renderSummary, writeStderr} from '../cli/output.js'
import type {ProbeServer} from '../http/probe-server.js'
import {startConsumerProbes} from '../http/consumer-probes.js'

export default class Consume extends IpcCommand {
  static override summary = 'Consume device events from Kafka and count unique device IPs.'
  static override description = [
    "Joins consumer group --group (several processes with one group share the topic's partitions), validates every " +
      "event, parses its timestamp, and adds valid events to the backend. A partition's offset is committed only " +
      'after the backend has durably taken every event up to it (after the write holding it succeeded: redis ' +
      'acknowledged the PFADDs, clickhouse the batch insert), so a crash loses nothing: uncommitted events are read ' +
      'again, and counting a device twice does not change a distinct count.',
    '',
    'Prints "Total devices: N" and the group\'s lag every --report-interval. With --metrics-port it serves /metrics ' +
      '(Prometheus: events by outcome, backend writes and their latency, unwritten events, commits, lag per ' +
      'partition, group membership, process CPU, memory, event-loop lag and GC), /healthz and /readyz (200 once it is ' +
      'in the group and connected to a backend whose writes succeed, else 503 with the reason). SIGINT/SIGTERM, ' +
      '--until-idle and --max-messages stop cleanly: stop fetching, flush, commit, print the summary, exit 0. A ' +
      'second SIGINT/SIGTERM exits at once (code 130) without committing.',
    '',
    '--workers N runs N members of the group in one process, each in a worker thread with its own Kafka client and ' +
      "backend writer (as Kafka Connect's tasks.max), to use more than one core. The process reports, stops and " +
      'serves /metrics as one; a member that fails stops them all, each committing only what its backend stored.',
    '',
    'Invalid events are skipped, counted by reason, logged (rate-limited) to stderr, and with --dlq-topic produced ' +
      'to that topic with the reason in the ipc.error.reason header.',
    '',
    "Topics compressed with any codec Kafka defines are read: gzip, snappy (raw and the Java client's framing), " +
      'lz4 and zstd. A record batch that does not decompress, names an unknown codec or holds records whose lengths ' +
      'do not fit in it stops the consumer with one ' +
      'line naming topic, partition and offset, and exit code 4; what came before it is stored and committed, ' +
      'nothing from it on.',
    '',
    'When the backend is down, writes are retried with capped exponential backoff (each failure logged); nothing is ' +
      'committed meanwhile, fetching pauses once the backend holds back new events, and the consumer stays in its ' +
      'group. With --max-retry-time, an outage longer than that ends the process with exit code 3 and the offsets of ' +
      'the unwritten events uncommitted; without it the consumer waits for the backend however long it takes (also ' +
      'when stopping: the final flush waits, and a second signal exits without committing).',
    '',
    'Exit codes: 0 stopped cleanly; 1 the consumer hit a fault it could not get past; 2 invalid flags or names ' +
      '(nothing is touched); 3 Kafka or the backend unavailable (also after --max-retry-time); 130 forced by a second ' +
      'signal.',
  ].join('\n')

  static override examples = [
    '<%= config.bin %> consume --topic events --backend clickhouse',
    '<%= config.bin %> consume --topic events --backend redis --from-beginning --until-idle 5s',
    '<%= config.bin %> consume --topic events --backend clickhouse --batch-size 50000 --flush-interval 10s --dlq-topic events-invalid',
    {
      description: 'Rebuild a count from 6 hours ago in a new group (or move an existing group with --reset-offsets).',
      command: '<%= config.bin %> consume --topic events --backend redis --redis-key ipc:replay --group replay --from-time 6h',
    },
    {
      description: 'Use two cores: two members of the group in worker threads of one process.',
      command: '<%= config.bin %> consume --topic events --backend clickhouse --workers 2',
    },
    {
      description: 'Serve Prometheus metrics and health probes on port 9464 of every interface, over HTTPS with basic auth (a Prometheus web config).',
      command: '<%= config.bin %> consume --topic events --metrics-port 9464 --metrics-host 0.0.0.0 --web-config /etc/ipc/web-config.yml',
    },
  ]

  static override enableJsonFlag = true

  static override flags = {
    ...kafkaFlags,
    ...kafkaSecurityFlags,
    ...backendFlags,
    ...backendScalingFlags,
    ...backendWriteFlags,
    group: Flags.string({description: 'Consumer group id.', env: 'IPC_GROUP', default: 'ipc'}),
    'from-beginning': Flags.boolean({
      description: 'Start from the earliest offset when the group has no committed offset (default: only new events).',
      default: false,
    }),
    'from-time': Flags.string({
      description:
        "Start each partition at its first event at or after this time (Kafka's offsets for times, as kcat -o s@ts): " +
        'ISO 8601 (2024-09-18T14:00:00Z), a date, an epoch number, or a time before now (30m, 6h, 7d). Refused for a ' +
        'group that has committed offsets on the topic unless --reset-offsets is given.',
      env: 'IPC_FROM_TIME',
    }),
    'reset-offsets': Flags.boolean({
      description: "With --from-time: move the group's committed offsets to that time (a replay; what was counted is counted again).",
      dependsOn: ['from-time'],
    }),
    'batch-size': Flags.integer({
      description:
        'Events per backend write. clickhouse: insert when this many are buffered. redis: a write holds what ' +
        'arrived while the previous one was in flight, up to this many. Either way fetching pauses while two ' +
        'batches wait in memory.',
      default: DEFAULT_BATCH_SIZE,
      min: 1,
    }),
    'flush-interval': durationFlag({
      description: 'clickhouse: insert buffered events at least this often, even when no new events arrive.',
      ...durationDefault(DEFAULT_FLUSH_INTERVAL_MS),
    }),
    'report-interval': durationFlag({description: 'How often to print "Total devices: N".', ...durationDefault(DEFAULT_REPORT_INTERVAL_MS)}),
    'until-idle': durationFlag({
      description:
        "Stop cleanly once caught up for this long: no event arrived and the group's lag shows nothing left to read on " +
        'the partitions held (one-shot runs). Silence with events left to read is a stall, not idleness.',
    }),
    'max-messages': Flags.integer({description: 'Stop cleanly after processing this many messages.', min: 1}),
    'dlq-topic': Flags.string({
      description: 'Produce invalid messages to this topic (original key, value and headers plus ipc.error.* headers).',
      env: 'IPC_DLQ_TOPIC',
    }),
    'dlq-compression': compressionFlag({
      description: "Compression of the dead letters' record batches (as kcat -z names it).",
      env: 'IPC_DLQ_COMPRESSION',
      default: 'none',
    }),
    'session-timeout': durationFlag({
      description: 'Consumer group session timeout: how long a crashed member holds its partitions.',
      env: 'KAFKA_SESSION_TIMEOUT',
      ...durationDefault(DEFAULT_SESSION_TIMEOUT_MS),
    }),
    ...consumerMemoryFlags,
    workers: Flags.integer({
      description:
        'Consumer-group members in this process, each in a worker thread with its own Kafka client and backend ' +
        'writer. More than the topic has partitions leaves some idle. Not with --backend memory (its count is per member).',
      env: 'IPC_WORKERS',
      default: 1,
      min: 1,
      max: 64,
    }),
    'metrics-port': Flags.integer({
      description: 'Serve /metrics (Prometheus), /healthz and /readyz on this port while consuming; 0 picks a free one. Off by default.',
      env: 'IPC_METRICS_PORT',
      min: 0,
      max: 65_535,
    }),
    'metrics-host': Flags.string({description: 'Address the metrics port listens on.', env: 'IPC_METRICS_HOST', default: '127.0.0.1'}),
    ...webServerFlags,
    'backend-timeout': durationFlag({
      description:
        'Time allowed for one backend request (an insert, a Redis command) before it counts as failed and is ' +
        'retried. A timed-out ClickHouse insert may still have been applied: its retry stores nothing twice ' +
        '(see the README).',
      env: 'IPC_BACKEND_TIMEOUT',
      ...durationDefault(DEFAULT_WRITE_TIMEOUT_MS),
    }),
    'max-retry-time': durationFlag({
      description:
        'Give up (exit code 3, offsets of unwritten events uncommitted) when the backend has failed every ' +
        'write for this long, or Kafka partitions with events left to read have not advanced for this long. ' +
        'Default: retry until they are back.',
      env: 'IPC_MAX_RETRY_TIME',
    }),
    ...kafkaLogLevelFlags,
  }

  async run(): Promise<ConsumeSummary> {
    const {flags} = await this.parse(Consume)
    limitHeapGrowth(flags['heap-growing-percent'])
    const progress = new ProgressLine()
    const warn = (line: string) => {
      progress.clear()
      writeStderr(line)
    }
    let backend: CountBackend
    let backendOptions: BackendOptions
    let kafka: Kafka
    let kafkaSettings: Omit<KafkaSettings, 'log'>
    let fromTimeMs: number | undefined
    let web: Awaited<ReturnType<typeof webServerOptionsFromFlags>>
    try {
      // Names and addresses are checked here, before anything connects: a bad one touches nothing.
      if (flags.workers > 1 && flags.backend === 'memory') {
        throw new Error('--workers needs a shared backend: the memory backend would count each worker apart (use redis or clickhouse)')
      }
      backendOptions = {
        ...backendOptionsFromFlags(flags),
        batchSize: flags['batch-size'],
        flushIntervalMs: flags['flush-interval'],
        maxRetryTimeMs: flags['max-retry-time'],
        requestTimeoutMs: flags['backend-timeout'],
      }
      backend = await createBackend(flags.backend, backendOptions)
      const security = kafkaSecurityFromFlags(flags, 'consume')
      kafkaSettings = {brokers: parseBrokers(flags.brokers), clientId: 'ipc-consume', logLevel: flags['kafka-log-level'], security}
      kafka = createKafka({...kafkaSettings, log: warn})
      fromTimeMs = flags['from-time'] === undefined ? undefined : parseTimeBound(flags['from-time'], Date.now(), '--from-time')
      web = await webServerOptionsFromFlags(flags)
    } catch (error) {
      this.failWith(error, {exitCode: EXIT_USAGE})
    }
    if (fromTimeMs !== undefined) {
      try {
        const start = await startGroupAtTime(kafka, {groupId: flags.group, topic: flags.topic, timeMs: fromTimeMs, reset: flags['reset-offsets'] === true})
        const offsets = start.partitions.map(({partition, offset}) => `${partition}@${offset}`).join(' ')
        warn(`ipc consume: group ${flags.group} starts ${flags.topic} at ${formatIsoMillis(fromTimeMs)}: ${offsets}`)
      } catch (error) {
        await backend.close().catch(() => undefined)
        this.failWith(error)
      }
    }
    const member = {
      topic: flags.topic,
      groupId: flags.group,
      fromBeginning: flags['from-beginning'],
      sessionTimeoutMs: flags['session-timeout'],
      maxMessages: flags['max-messages'],
      dlqTopic: flags['dlq-topic'],
      dlqCompression: flags['dlq-compression'],
      fetchMaxBytes: flags['fetch-max-bytes'],
      maxPartitionFetchBytes: flags['max-partition-fetch-bytes'],
    }
    const onReport = (report: ConsumeReport) => {
      progress.clear()
      this.log(reportLine(report))
    }
    const untilIdleMs = flags['until-idle']
    const stallLimitMs = flags['max-retry-time']
    const reportIntervalMs = flags['report-interval']
    const running =
      flags.workers === 1
        ? new ConsumePipeline({...member, kafka, backend, untilIdleMs, stallLimitMs, reportIntervalMs, onReport, log: warn})
        : new ConsumerPool({
            workers: flags.workers,
            worker: {kafka: kafkaSettings, backendName: flags.backend, backendOptions, member, untilIdleMs},
            kafka,
            countBackend: backend,
            stallLimitMs,
            reportIntervalMs,
            onReport,
            log: warn,
          })
    let probes: ProbeServer | undefined
    if (flags['metrics-port'] !== undefined) {
      const metricsBackend = running instanceof ConsumerPool ? running.backend : backend
      const identity = {group: flags.group, topic: flags.topic}
      const listenOn = {port: flags['metrics-port'], host: flags['metrics-host']}
      try {
        probes = await startConsumerProbes({pipeline: running, backend: metricsBackend, identity, ...listenOn, web, log: warn})
      } catch (error) {
        await backend.close().catch(() => undefined)
        this.failWith(error, {exitCode: EXIT_FAILURE})
      }
    }
    const progressTimer = progress.enabled
      ? setInterval(() => {
          const {stats} = running
          progress.update(`consumed ${formatInt(stats.processed)} · valid ${formatInt(stats.valid)} · invalid ${formatInt(stats.invalid)}`)
        }, 250)
      : undefined
    const disposeSignals = onStopSignals({
      command: 'consume',
      stopping: 'flushing and committing',
      forcing: 'without committing',
      log: warn,
      onFirst: () => running.stop('signal'),
      alreadyStopping: () => running.stopping,
    })
    let summary: ConsumeSummary
    try {
      summary = await running.run()
    } catch (error) {
      progress.clear()
      const maxRetryTime = flags['max-retry-time']
      const gaveUp =
        maxRetryTime !== undefined &&
        (error instanceof ConsumerPoolError ? error.backendGaveUp : errorChain(error).some((cause) => cause instanceof BackendGaveUpError))
      const prefix = gaveUp ? `gave up after --max-retry-time ${formatDuration(maxRetryTime)}: ` : ''
      this.failWith(error, {prefix})
    } finally {
      clearInterval(progressTimer)
      disposeSignals()
      await probes?.close()
    }
    progress.clear()
    this.log(reportLine(summary))
    this.printSummary(summary)
    exitSoonIfHeldOpen('consume', warn)
    return summary
  }

  private printSummary(summary: ConsumeSummary): void {
    const {stats} = summary
    const reasons = Object.entries(stats.invalidByReason).filter(([, n]) => n > 0)
    const rows: Array<[string, string | number]> = [
      ['stopped by', summary.reason],
      ['total devices', summary.totalDevices === undefined ? `unknown (${summary.countError})` : formatInt(summary.totalDevices)],
      ['events processed', formatInt(stats.processed)],
      ['valid', formatInt(stats.valid)],
      ['invalid', formatInt(stats.invalid)],
      ...reasons.map(([reason, n]): [string, string] => [`  ${reason}`, formatInt(n)]),
      ['elapsed', formatDuration(summary.elapsedMs)],
      ['group join', summary.joinMs === undefined ? 'never joined' : formatDuration(summary.joinMs)],
      ['lag at stop', summary.lag === undefined ? 'unknown' : formatInt(summary.lag)],
      ['events/s (first to last event)', formatInt(summary.steadyEventsPerSecond)],
    ]
    if (isInteractive()) this.log(renderSummary(rows))
    else for (const [label, value] of rows) this.log(`${label.trim()}: ${value}`)
  }
}

function reportLine(report: ConsumeReport): string {
  const devices = report.totalDevices === undefined ? `unknown (${report.countError})` : String(report.totalDevices)
  const {stats} = report
  const lag = report.lag === undefined ? 'unknown' : formatInt(report.lag)
  return (
    `Total devices: ${devices} | ${formatInt(report.eventsPerSecond)} events/s | processed ` +
    `${formatInt(stats.processed)} | invalid ${formatInt(stats.invalid)} | lag ${lag}` +
    (report.stall ? ` | stalled: ${report.stall}` : '')
  )
}
