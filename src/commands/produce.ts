import {Flags} from '@oclif/core'
import {IpcCommand} from '../cli/base-command.js'
import {EXIT_USAGE} from '../cli/exit-codes.js'
import {kafkaSecurityFlags, kafkaSecurityFromFlags} from '../cli/kafka-security-flags.js'
import type {KafkaSecurity} from '../kafka/security.js'
import {MAX_DEVICES} from '../loadgen/generator.js'
import {compressionFlag, kafkaFlags, kafkaLogLevelFlags} from '../cli/flags.js'
import {createKafka, type Kafka, KafkaAuthenticationError, KafkaUnreachableError, parseBrokers} from '../kafka/client.js'
import {formatDuration} from '../util/duration.js'
import {formatInt, isInteractive, ProgressLine, renderSummary, writeStderr} from '../cli/output.js'
import {produceEvents, type ProduceSummary} from '../loadgen/produce-events.js'
import {CONNECT_RETRY} from '../kafka/checked-producer.js'
import {onStopSignals} from '../cli/signals.js'

export default class Produce extends IpcCommand {
  static override summary = 'Send simulated device events to a Kafka topic (load generator).'
  static override description = [
    'Simulates --num-devices devices (IPv4 addresses in 10.0.0.0/8) sending --num-messages events, each from a ' +
      'device picked at random, with timestamps in the shapes real devices send (ISO 8601 with and without zone or ' +
      'fraction, epoch seconds and milliseconds, as strings and numbers). The message key is the device IP, so one ' +
      "device's events stay in one partition.",
    '',
    'The closing summary states messages sent, elapsed time, rate and the exact number of distinct device IPs ' +
      'emitted, so a run can be checked against `ipc count`. The same --seed gives the same devices, device order, ' +
      'shapes and error codes (event times are relative to the start of the run).',
    '',
    'SIGINT/SIGTERM stops after the send in flight and prints the summary (exit 0); a second signal exits at once with code 130.',
  ].join('\n')

  static override examples = [
    '<%= config.bin %> produce --topic events',
    '<%= config.bin %> produce --topic events --num-devices 5000 --num-messages 100000 --pause-ms 0 --batch 1000 --seed 42',
    '<%= config.bin %> produce --topic events --num-messages 100000 --pause-ms 0 --batch 1000 --json | jq .distinctDevices',
    '<%= config.bin %> produce --topic events --num-messages 100000 --pause-ms 0 --batch 1000 --compression zstd',
  ]

  static override enableJsonFlag = true

  static override flags = {
    ...kafkaFlags,
    ...kafkaSecurityFlags,
    'num-devices': Flags.integer({description: 'Number of simulated devices.', default: 100, min: 1, max: MAX_DEVICES}),
    'num-messages': Flags.integer({description: 'Number of events to send.', default: 1000, min: 0}),
    'pause-ms': Flags.integer({description: 'Pause after each send request, in milliseconds.', default: 100, min: 0}),
    batch: Flags.integer({description: 'Events per send request (raise with --pause-ms 0 for throughput).', default: 1, min: 1, max: 100_000}),
    seed: Flags.integer({description: 'Seed for reproducible runs. Default: random (printed in the summary).'}),
    compression: compressionFlag({
      char: 'z',
      description: "Compression of each send request's record batch, as kcat -z and the Java client's compression.type name it.",
      env: 'KAFKA_COMPRESSION',
      default: 'none',
    }),
    ...kafkaLogLevelFlags,
  }

  async run(): Promise<ProduceSummary> {
    const {flags} = await this.parse(Produce)
    let brokers: string[]
    let security: KafkaSecurity
    try {
      // Addresses and security settings are checked before anything connects.
      brokers = parseBrokers(flags.brokers)
      security = kafkaSecurityFromFlags(flags, 'produce')
    } catch (error) {
      this.failWith(error, {exitCode: EXIT_USAGE})
    }
    const seed = flags.seed ?? Math.floor(Math.random() * 2 ** 31)
    const progress = new ProgressLine()
    const interrupted = new AbortController()
    const disposeSignals = onStopSignals({
      command: 'produce',
      stopping: 'finishing the send in flight',
      forcing: 'without waiting for the send in flight',
      log: (line) => {
        progress.clear()
        writeStderr(line)
      },
      onFirst: () => interrupted.abort(),
    })
    let summary: ProduceSummary
    let kafka: Kafka | undefined
    try {
      kafka = createKafka({brokers, clientId: 'ipc-produce', logLevel: flags['kafka-log-level'], retry: CONNECT_RETRY, security})
      summary = await produceEvents({
        kafka,
        topic: flags.topic,
        numDevices: flags['num-devices'],
        numMessages: flags['num-messages'],
        pauseMs: flags['pause-ms'],
        batchSize: flags.batch,
        seed,
        compression: flags.compression,
        stop: interrupted.signal,
        onProgress: (sent) =>
          progress.update(
            `producing ${formatInt(sent)}/${formatInt(flags['num-messages'])} (${Math.floor((sent * 100) / Math.max(1, flags['num-messages']))}%)`,
          ),
      })
    } catch (error) {
      progress.clear()
      this.failWith(error, {
        suffix: error instanceof KafkaUnreachableError || error instanceof KafkaAuthenticationError ? '' : ` (brokers ${flags.brokers})`,
      })
    } finally {
      disposeSignals()
    }
    progress.clear()
    if (isInteractive()) {
      this.log(
        renderSummary([
          ['topic', summary.topic],
          ['messages sent', formatInt(summary.messagesSent)],
          ['distinct device IPs', formatInt(summary.distinctDevices)],
          ['elapsed', formatDuration(summary.elapsedMs)],
          ['rate', `${formatInt(summary.messagesPerSecond)} msg/s`],
          ['seed', summary.seed],
          ['compression', summary.compression],
        ]),
      )
    } else {
      this.log(
        `sent ${summary.messagesSent} messages from ${summary.distinctDevices} distinct devices to ` +
          `${summary.topic} in ${formatDuration(summary.elapsedMs)} (${Math.round(summary.messagesPerSecond)} ` +
          `msg/s, seed ${summary.seed}, compression ${summary.compression})`,
      )
    }
    return summary
  }
}
