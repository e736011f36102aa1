import {Flags} from '@oclif/core'
import {IpcCommand} from '../cli/base-command.js'
import {DEFAULT_LAG_TIMEOUT_MS} from '../cli/defaults.js'
import {EXIT_FAILURE, EXIT_USAGE} from '../cli/exit-codes.js'
import {durationDefault, durationFlag, kafkaFlags, kafkaLogLevelFlags} from '../cli/flags.js'
import {kafkaSecurityFlags, kafkaSecurityFromFlags} from '../cli/kafka-security-flags.js'
import {formatInt, isInteractive, renderTable, writeStderr} from '../cli/output.js'
import {createKafka, type Kafka, parseBrokers} from '../kafka/client.js'
import {
  exceedsMaxLag,
  type GroupLag,
  type GroupLagJson,
  LAG_COLUMNS,
  LAG_RETRY,
  lagJson,
  lagLines,
  lagRows,
  LagTimeoutError,
  readGroupLag,
} from '../kafka/group-lag.js'
import {formatDuration} from '../util/duration.js'
import {withTimeout} from '../util/async.js'

export default class Lag extends IpcCommand {
  static override summary = "Print a consumer group's committed offset, log-end offset and lag per partition, and the total (for scripts and cron checks)."

  static override description = [
    'As kafka-consumer-groups --describe: per partition of --topic (default: every topic the group has committed ' +
      'offsets for or members assigned to) the committed offset, the log-end offset, the lag (their difference) and ' +
      'the member it is assigned to; then the total. A table on a terminal; piped, one line per partition ' +
      '"TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID" ("-" for none), then "total N"; ' +
      '--json prints {"group", "state", "partitions": [...], "members": [...], "totalLag"}.',
    '',
    'A partition without a committed offset shows "-" as its offset and counts its whole retained log (log-end ' +
      'minus log-start offset) as lag: what a consumer that starts at the earliest offset has to read. So --max-lag ' +
      'never passes a group that has not read a partition holding messages. Transaction markers count as read: ' +
      'consumers (ipc consume, the Java client, kafkajs) commit past the markers that end a partition.',
    '',
    'Exit codes:',
    '0 = printed, and the total lag is at most --max-lag (when given).',
    '1 = the total lag is above --max-lag (the lag is printed all the same).',
    '2 = invalid flags, or the group does not exist (no members and no committed offsets).',
    '3 = Kafka cannot be reached, refused the login, did not answer within --timeout, or the topic does not exist.',
  ].join('\n')

  static override examples = [
    {description: 'The lag of group ipc on every topic it reads:', command: '<%= config.bin %> <%= command.id %> --group ipc'},
    {description: 'One topic, as JSON:', command: '<%= config.bin %> <%= command.id %> --group ipc --topic events --json'},
    {
      description: 'A cron check: fails (exit 1) when the group is more than 10000 events behind:',
      command: '<%= config.bin %> <%= command.id %> --group ipc --topic events --max-lag 10000 > /dev/null',
    },
  ]

  static override enableJsonFlag = true

  static override flags = {
    brokers: kafkaFlags.brokers,
    ...kafkaSecurityFlags,
    group: Flags.string({description: 'Consumer group id.', env: 'IPC_GROUP', default: 'ipc'}),
    topic: Flags.string({description: 'Only this topic. Default: every topic the group has committed offsets for or members assigned to.', env: 'IPC_TOPIC'}),
    'max-lag': Flags.integer({description: 'Exit with code 1 when the total lag is above this many messages.', min: 0}),
    timeout: durationFlag({
      description: 'Give up with exit code 3 when Kafka has not answered within this time.',
      ...durationDefault(DEFAULT_LAG_TIMEOUT_MS),
    }),
    ...kafkaLogLevelFlags,
  }

  async run(): Promise<GroupLagJson> {
    const {flags} = await this.parse(Lag)
    let kafka: Kafka
    try {
      const security = kafkaSecurityFromFlags(flags, 'lag')
      const brokers = parseBrokers(flags.brokers)
      kafka = createKafka({brokers, clientId: 'ipc-lag', logLevel: flags['kafka-log-level'], security, retry: LAG_RETRY})
    } catch (error) {
      this.failWith(error, {exitCode: EXIT_USAGE})
    }
    const admin = kafka.admin()
    let lag: GroupLag
    try {
      lag = await withTimeout(
        admin.connect().then(() => readGroupLag(admin, flags.group, flags.topic)),
        flags.timeout,
        () => new LagTimeoutError(`no answer from Kafka at ${flags.brokers} within ${formatDuration(flags.timeout)}`),
      )
    } catch (error) {
      // The process exits with the failure; disconnecting is best effort and not awaited.
      admin.disconnect().catch(() => {})
      this.failWith(error)
    }
    await admin.disconnect().catch(() => {})

    const maxLag = flags['max-lag']
    if (!this.jsonEnabled()) this.print(lag)
    if (exceedsMaxLag(lag.totalLag, maxLag)) {
      writeStderr(`ipc lag: total lag ${lag.totalLag} of group ${lag.group} is above --max-lag ${maxLag}`)
      process.exitCode = EXIT_FAILURE
    }
    return lagJson(lag, maxLag)
  }

  private print(lag: GroupLag): void {
    const idle = `consumer group ${lag.group} has no active members`
    if (!isInteractive()) {
      for (const line of lagLines(lag)) this.log(line)
      if (lag.members.length === 0) writeStderr(`ipc lag: ${idle}`)
      return
    }
    if (lag.partitions.length > 0) this.log(renderTable(LAG_COLUMNS, lagRows(lag)))
    this.log(`total lag: ${formatInt(lag.totalLag)}`)
    if (lag.members.length === 0) this.log(idle)
  }
}
