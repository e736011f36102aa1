import {randomInt} from 'node:crypto'
import {type Admin, type Consumer, type ICustomPartitioner, Kafka, logLevel as KafkaLogLevel, type LogEntry, type Message, type Producer, type ProducerConfig, type RecordMetadata} from 'kafkajs'

/** The one place that knows the Kafka client library, so it can be swapped without touching callers. */

export interface KafkaSettings {
  brokers: readonly string[]
  clientId?: string
  /** Where client warnings and errors go (one line each). Default: stderr. */
  log?: (line: string) => void
  /** Client log level: error, warn, info, debug, nothing. Default: error. */
  logLevel?: string
  /** Initial connection timeout per broker. */
  connectionTimeoutMs?: number
}

export class KafkaSettingsError extends Error {
  override name = 'KafkaSettingsError'
}

/**
 * The topic is not on the cluster and the broker does not create topics on first use
 * (`auto.create.topics.enable=false`, as on most production clusters). `ipc consume` and
 * `ipc produce` stop with this instead of waiting: a missing topic is most often a typo.
 */
export class TopicNotFoundError extends Error {
  override name = 'TopicNotFoundError'
  readonly retriable = false
  constructor(
    readonly topic: string,
    options?: ErrorOptions,
  ) {
    super(`topic "${topic}" does not exist and the broker does not create topics automatically: create it first`, options)
  }
}

/** Whether a Kafka client error (or one it wraps) says the topic or partition is unknown. */
export function isUnknownTopicError(error: unknown): boolean {
  let current: unknown = error
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    if ((current as {type?: string}).type === 'UNKNOWN_TOPIC_OR_PARTITION') return true
    const wrapped = current as {originalError?: unknown; cause?: unknown}
    current = wrapped.originalError ?? wrapped.cause
  }
  return false
}

const HOST_PORT = /^[A-Za-z0-9._-]+:\d{1,5}$|^\[[0-9A-Fa-f:.]+\]:\d{1,5}$/

/** `host1:9092, host2:9092` → `['host1:9092', 'host2:9092']`, each checked for host:port form. */
export function parseBrokers(text: string): string[] {
  const brokers = text.split(',').map((broker) => broker.trim()).filter(Boolean)
  if (brokers.length === 0) throw new KafkaSettingsError('no Kafka brokers given: set --brokers or KAFKA_BROKERS (host:port,…)')
  for (const broker of brokers) {
    if (!HOST_PORT.test(broker)) throw new KafkaSettingsError(`invalid broker address "${broker}": use host:port`)
  }
  return brokers
}

const LEVELS: Record<string, KafkaLogLevel> = {
  nothing: KafkaLogLevel.NOTHING,
  error: KafkaLogLevel.ERROR,
  warn: KafkaLogLevel.WARN,
  info: KafkaLogLevel.INFO,
  debug: KafkaLogLevel.DEBUG,
}

/**
 * No broker at the given addresses took a Kafka request: nothing listens there, or what listens
 * does not speak Kafka (e.g. a Redis port, where the ApiVersions handshake gets no answer).
 */
export class KafkaUnreachableError extends Error {
  override name = 'KafkaUnreachableError'
  readonly retriable = true
  constructor(
    readonly brokers: readonly string[],
    options?: ErrorOptions,
  ) {
    const reason = (options?.cause as Error | undefined)?.message ?? 'no answer'
    const hint = /not connected|timed out/i.test(reason) ? ': is it a Kafka broker\'s port?' : ''
    super(`no Kafka broker answered at ${brokers.join(',')} (${reason})${hint}`, options)
  }
}

/**
 * Broker answers that kafkajs logs as errors but that are the group protocol at work: a member
 * joining or leaving makes every other member's next heartbeat answer REBALANCE_IN_PROGRESS, and
 * the member rejoins (the consumer reports that as its REBALANCING event). Shown from `info` up.
 */
const ROUTINE_ERRORS = /The group is rebalancing, so a rejoin is needed/

/**
 * A kafkajs client whose log is held back until a broker has answered one of its consumers,
 * producers or admins. Until then every client error is a failure to reach the cluster, which the command
 * reports once as a {@link KafkaUnreachableError}; kafkajs would log each retry of each broker.
 * With `--kafka-log-level info` or `debug` nothing is held.
 */
export function createKafka(settings: KafkaSettings): Kafka {
  const log = settings.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  const level = LEVELS[settings.logLevel ?? 'error'] ?? KafkaLogLevel.ERROR
  let held: string[] | undefined = level <= KafkaLogLevel.WARN ? [] : undefined
  const opened = () => {
    reached.add(kafka)
    if (!held) return
    for (const line of held) log(line)
    held = undefined
  }
  const kafka = new Kafka({
    clientId: settings.clientId ?? 'ipc',
    brokers: [...settings.brokers],
    connectionTimeout: settings.connectionTimeoutMs ?? 3000,
    logLevel: level,
    logCreator: () => (entry: LogEntry) => {
      const {message, error} = entry.log as {message: string; error?: string}
      if (level < KafkaLogLevel.INFO && error && ROUTINE_ERRORS.test(error)) return
      const line = `kafka ${entry.label.toLowerCase()}: ${message}${error ? ` (${error})` : ''}`
      if (held) held.push(line)
      else log(line)
    },
  })
  // The first answered request, rather than connect(): kafkajs's connect() can resolve against a
  // port that accepted the TCP connection but never answered the Kafka handshake.
  const watch = <T extends Consumer | Producer | Admin>(client: T): T => {
    const remove = (client.on as (event: string, listener: () => void) => () => void)(client.events.REQUEST, () => {
      opened()
      remove()
    })
    return client
  }
  const {consumer, producer, admin} = kafka
  return Object.assign(kafka, {
    consumer: (config: Parameters<Kafka['consumer']>[0]) => watch(consumer.call(kafka, config)),
    producer: (config?: Parameters<Kafka['producer']>[0]) => watch(producer.call(kafka, config)),
    admin: (config?: Parameters<Kafka['admin']>[0]) => watch(admin.call(kafka, config)),
  })
}

const reached = new WeakSet<Kafka>()

/**
 * The error to report when a command using `kafka` failed: {@link KafkaUnreachableError} when a
 * Kafka client error came before any of its clients had connected, the error itself otherwise.
 */
export function explainKafkaFailure(kafka: Kafka | undefined, brokers: readonly string[], error: unknown): unknown {
  if (!kafka || reached.has(kafka) || !(error instanceof Error)) return error
  if (!error.name.startsWith('KafkaJS') && error.message !== 'Broker not connected') return error
  return new KafkaUnreachableError(brokers, {cause: error})
}

const MURMUR2_SEED = 0x9747b28c
const MURMUR2_M = 0x5bd1e995

/**
 * Kafka's murmur2 of a message key (the Java client's `Utils.murmur2`), in 32-bit integer arithmetic.
 * kafkajs computes the same value with 64-bit Long objects, allocating several per 4 key bytes; only
 * the low 32 bits matter, which `Math.imul` gives directly. A unit test checks both agree.
 */
export function murmur2(key: Buffer | string): number {
  const data = typeof key === 'string' ? Buffer.from(key) : key
  const length = data.length
  const whole = length & ~3
  let h = MURMUR2_SEED ^ length
  for (let i = 0; i < whole; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
    k = Math.imul(k, MURMUR2_M)
    k ^= k >>> 24
    k = Math.imul(k, MURMUR2_M)
    h = Math.imul(h, MURMUR2_M) ^ k
  }
  const rest = length & 3
  if (rest === 3) h ^= data[whole + 2] << 16
  if (rest >= 2) h ^= data[whole + 1] << 8
  if (rest >= 1) h = Math.imul(h ^ data[whole], MURMUR2_M)
  h ^= h >>> 13
  h = Math.imul(h, MURMUR2_M)
  h ^= h >>> 15
  return h | 0
}

/**
 * The producer partitioner, with the choices of kafkajs's (and the Java client's) default one: the
 * message's partition if set, else murmur2 of the key (so a device's events keep one partition, the
 * same one any Kafka client picks), else round-robin over the partitions that have a leader. It uses
 * {@link murmur2} and lists available partitions only for keyless messages (kafkajs's filters them for
 * every message): `ipc produce` used 15.7 CPU µs per event with kafkajs's, 13.3 with this one.
 */
export const defaultPartitioner: ICustomPartitioner = () => {
  const counters = new Map<string, number>()
  return ({topic, partitionMetadata, message}) => {
    if (message.partition !== null && message.partition !== undefined) return message.partition
    if (message.key !== null && message.key !== undefined) return (murmur2(message.key) & 0x7fffffff) % partitionMetadata.length
    const counter = (counters.get(topic) ?? randomInt(0x7fffffff)) + 1
    counters.set(topic, counter)
    const available = partitionMetadata.filter((partition) => partition.leader >= 0)
    if (available.length === 0) return (counter & 0x7fffffff) % partitionMetadata.length
    return available[(counter & 0x7fffffff) % available.length].partitionId
  }
}

/** Some messages of a send got no acknowledgement however often they were sent again. */
export class IncompleteSendError extends Error {
  override name = 'IncompleteSendError'
  readonly retriable = true
}

/**
 * Retries of one send: 0.3 s doubling up to 5 s, 12 times (about 45 s in all). A cluster moves
 * leadership off a node that died only after the node's session expires (broker.session.timeout.ms,
 * 9 s by default), and kafkajs's default (5 retries, about 9 s) gave up before that on the
 * three-node test cluster. The Java producer waits up to delivery.timeout.ms (120 s).
 */
export const SEND_RETRY = {initialRetryTime: 300, maxRetryTime: 5000, retries: 12}

/** Sends beyond the first for messages whose partition the answers left out. */
const MAX_RESENDS = 5

/**
 * A kafkajs producer whose `send` resolves only when every message's partition was acknowledged.
 *
 * kafkajs 2.2.4 can drop messages when partition leadership moves during a send
 * (tulios/kafkajs#1303): its retry skips every broker that answered the first attempt, also for
 * the partitions that moved to that broker from the one that failed, and resolves anyway. Measured
 * on the three-node test cluster: 89 of 40,000 acknowledged events missing after the leader was
 * killed. This wrapper records the partition chosen for each message and sends again those whose
 * partition is missing from the answers (at least once: nothing acknowledged is sent twice by it).
 */
export class CheckedProducer {
  private readonly partitions = new WeakMap<Message, number>()
  readonly producer: Producer

  constructor(kafka: Pick<Kafka, 'producer'>, config: ProducerConfig = {}) {
    const inner = config.createPartitioner ?? defaultPartitioner
    this.producer = kafka.producer({
      retry: SEND_RETRY,
      ...config,
      createPartitioner: () => {
        const choose = inner()
        return (args) => {
          const partition = choose(args)
          this.partitions.set(args.message, partition)
          return partition
        }
      },
    })
  }

  connect(): Promise<void> {
    return this.producer.connect()
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect()
  }

  async send(record: {topic: string; messages: Message[]; acks?: number}): Promise<RecordMetadata[]> {
    const answers: RecordMetadata[] = []
    let pending = record.messages
    for (let sends = 0; ; sends++) {
      const answered = await this.producer.send({...record, messages: pending})
      answers.push(...answered)
      const stored = new Set(answered.filter((answer) => answer.topicName === record.topic && answer.errorCode === 0).map((answer) => answer.partition))
      pending = pending.filter((message) => !stored.has(this.partitions.get(message) ?? -1))
      if (pending.length === 0) return answers
      if (sends >= MAX_RESENDS) {
        throw new IncompleteSendError(`${pending.length} of ${record.messages.length} messages to ${record.topic} were not acknowledged after ${sends + 1} sends`)
      }
    }
  }
}

export type {Kafka} from 'kafkajs'


export class TopicExistsError extends Error {
  override name = 'TopicExistsError'
  readonly retriable = false
}

export class TopicNotReadyError extends Error {
  override name = 'TopicNotReadyError'
  readonly retriable = true
}

export interface NewTopic {
  topic: string
  partitions: number
  /** Replicas per partition; default: the broker's default.replication.factor. */
  replication?: number
  /** How long to wait for every partition to have a leader. Default 30 s. */
  timeoutMs?: number
}

/**
 * Creates a topic with the admin API and waits until every partition has a leader (for the demo,
 * the benchmarks and the tests; `ipc` itself never creates topics). kafkajs's own `waitForLeaders`
 * gives up on UNKNOWN_TOPIC_OR_PARTITION, which a broker answers until the new topic's metadata has
 * reached it; this waits through that.
 */
export async function createTopic(kafka: Pick<Kafka, 'admin'>, spec: NewTopic): Promise<void> {
  const admin = kafka.admin()
  const timeoutMs = spec.timeoutMs ?? 30_000
  await admin.connect()
  try {
    const created = await admin.createTopics({topics: [{topic: spec.topic, numPartitions: spec.partitions, replicationFactor: spec.replication ?? -1}], timeout: timeoutMs})
    if (!created) throw new TopicExistsError(`topic "${spec.topic}" exists already`)
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const leaders = await admin.fetchTopicMetadata({topics: [spec.topic]}).then(
        ({topics}) => topics[0].partitions.filter((partition) => partition.leader >= 0).length,
        (error: {retriable?: boolean}) => {
          if (error.retriable) return 0
          throw error
        },
      )
      if (leaders === spec.partitions) return
      if (Date.now() > deadline) throw new TopicNotReadyError(`topic "${spec.topic}": ${leaders} of ${spec.partitions} partitions have a leader after ${timeoutMs} ms`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  } finally {
    await admin.disconnect()
  }
}
