import {Command, Flags} from '@oclif/core'
import {backendOptionsFromFlags, createBackend} from '../backends/registry.js'
import {ConsumePipeline, type ConsumeReport, type ConsumeSummary} from '../consume.js'
import {formatDuration} from '../duration.js'
import {errorLine, EXIT_FORCED, exitCodeFor} from '../exit-codes.js'
import {backendFlags, durationFlag, kafkaFlags} from '../flags.js'
import {createKafka, parseBrokers} from '../kafka.js'
import {formatInt, isInteractive, ProgressLine, renderSummary, writeStderr} from '../output.js'

export default class Consume extends Command {
  static override summary = 'Consume device events from Kafka and count unique device IPs.'
  static override description = `Joins consumer group --group (several processes with one group share the topic's partitions), validates every event, parses its timestamp, and adds valid events to the backend. A partition's offset is committed only after the backend has durably taken every event up to it (clickhouse: after the batch insert succeeded), so a crash loses nothing: uncommitted events are read again, and counting a device twice does not change a distinct count.

Prints "Total devices: N" every --report-interval. SIGINT/SIGTERM, --until-idle and --max-messages stop cleanly: stop fetching, flush, commit, print the summary, exit 0. A second SIGINT/SIGTERM exits at once (code 130) without committing.

Invalid events are skipped, counted by reason, logged (rate-limited) to stderr, and with --dlq-topic produced to that topic with the reason in the ipc.error.reason header.`

  static override examples = [
    '<%= config.bin %> consume --topic events --backend clickhouse',
    '<%= config.bin %> consume --topic events --backend redis --from-beginning --until-idle 5s',
    '<%= config.bin %> consume --topic events --backend clickhouse --batch-size 50000 --flush-interval 10s --dlq-topic events-invalid',
  ]

  static override enableJsonFlag = true

  static override flags = {
    ...kafkaFlags,
    ...backendFlags,
    group: Flags.string({description: 'Consumer group id.', env: 'IPC_GROUP', default: 'ipc'}),
    'from-beginning': Flags.boolean({description: 'Start from the earliest offset when the group has no committed offset (default: only new events).', default: false}),
    'batch-size': Flags.integer({description: 'clickhouse: insert when this many events are buffered.', default: 10_000, min: 1}),
    'flush-interval': durationFlag({description: 'clickhouse: insert buffered events at least this often, even when no new events arrive.', default: 30_000}),
    'report-interval': durationFlag({description: 'How often to print "Total devices: N".', default: 30_000}),
    'until-idle': durationFlag({description: 'Stop cleanly when no event has arrived for this long (one-shot runs).'}),
    'max-messages': Flags.integer({description: 'Stop cleanly after processing this many messages.', min: 1}),
    'dlq-topic': Flags.string({description: 'Produce invalid messages to this topic (original key, value and headers plus ipc.error.* headers).', env: 'IPC_DLQ_TOPIC'}),
    'session-timeout': durationFlag({description: 'Consumer group session timeout: how long a crashed member holds its partitions.', env: 'KAFKA_SESSION_TIMEOUT', default: 30_000}),
    'assign-delay': durationFlag({
      description: 'Delay before the group leader returns partition assignments. Needed only with the dev broker (librdkafka mock), which scripts/services env sets; 0 for a real Kafka.',
      env: 'KAFKA_ASSIGN_DELAY_MS',
      default: 0,
    }),
    'kafka-log-level': Flags.string({description: 'Kafka client log level.', options: ['nothing', 'error', 'warn', 'info', 'debug'], default: 'error', env: 'KAFKA_LOG_LEVEL'}),
  }

  async run(): Promise<ConsumeSummary> {
    const {flags} = await this.parse(Consume)
    const progress = new ProgressLine()
    const warn = (line: string) => {
      progress.clear()
      writeStderr(line)
    }
    const backend = await createBackend(flags.backend, {
      ...backendOptionsFromFlags(flags),
      batchSize: flags['batch-size'],
      flushIntervalMs: flags['flush-interval'],
      onError: (error) => warn(`${flags.backend}: ${errorLine(error)}`),
    })
    const kafka = createKafka({brokers: parseBrokers(flags.brokers), clientId: 'ipc-consume', logLevel: flags['kafka-log-level'], log: warn})
    const pipeline = new ConsumePipeline({
      kafka,
      topic: flags.topic,
      groupId: flags.group,
      fromBeginning: flags['from-beginning'],
      backend,
      assignDelayMs: flags['assign-delay'],
      sessionTimeoutMs: flags['session-timeout'],
      untilIdleMs: flags['until-idle'],
      maxMessages: flags['max-messages'],
      dlqTopic: flags['dlq-topic'],
      reportIntervalMs: flags['report-interval'],
      onReport: (report) => {
        progress.clear()
        this.log(reportLine(report))
      },
      log: warn,
    })
    const progressTimer = progress.enabled
      ? setInterval(() => {
          const {stats} = pipeline
          progress.update(`consumed ${formatInt(stats.processed)} · valid ${formatInt(stats.valid)} · invalid ${formatInt(stats.invalid)}`)
        }, 250)
      : undefined
    const onSignal = () => {
      if (pipeline.stopping) {
        warn('ipc consume: second signal, exiting without committing')
        process.exit(EXIT_FORCED)
      }
      warn('ipc consume: stopping: flushing and committing (signal again to force)')
      pipeline.stop('signal')
    }
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal)
    let summary: ConsumeSummary
    try {
      summary = await pipeline.run()
    } catch (error) {
      progress.clear()
      writeStderr(`ipc consume: ${errorLine(error)}`)
      this.exit(exitCodeFor(error))
    } finally {
      clearInterval(progressTimer)
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal)
    }
    progress.clear()
    this.log(reportLine(summary))
    this.printSummary(summary)
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
      ['events/s (first to last event)', formatInt(summary.steadyEventsPerSecond)],
    ]
    if (isInteractive()) this.log(renderSummary(rows))
    else for (const [label, value] of rows) this.log(`${label.trim()}: ${value}`)
  }
}

function reportLine(report: ConsumeReport): string {
  const devices = report.totalDevices === undefined ? `unknown (${report.countError})` : String(report.totalDevices)
  const {stats} = report
  return `Total devices: ${devices} | ${formatInt(report.eventsPerSecond)} events/s | processed ${formatInt(stats.processed)} | invalid ${formatInt(stats.invalid)}`
}
