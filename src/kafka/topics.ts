import type {Kafka} from 'kafkajs'
import {retryWhileRetriable} from '../util/async.js'
import {errorChain} from '../util/errors.js'

/** Topics: the errors a missing topic gives, and creating one with the admin API. */

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
  return errorChain(error).some((current) => (current as {type?: string}).type === 'UNKNOWN_TOPIC_OR_PARTITION')
}

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
    const created = await admin.createTopics({
      topics: [{topic: spec.topic, numPartitions: spec.partitions, replicationFactor: spec.replication ?? -1}],
      timeout: timeoutMs,
      waitForLeaders: false,
    })
    if (!created) throw new TopicExistsError(`topic "${spec.topic}" exists already`)
    await retryWhileRetriable(async () => {
      const leaders = await admin.fetchTopicMetadata({topics: [spec.topic]}).then(
        ({topics}) => topics[0].partitions.filter((partition) => partition.leader >= 0).length,
        (error: {retriable?: boolean}) => {
          if (error.retriable) return 0
          throw error
        },
      )
      if (leaders !== spec.partitions) {
        throw new TopicNotReadyError(`topic "${spec.topic}": ${leaders} of ${spec.partitions} partitions have a leader after ${timeoutMs} ms`)
      }
    }, timeoutMs)
  } finally {
    await admin.disconnect()
  }
}
