import type {Kafka, Message} from 'kafkajs'
import {type CompressionName, compressionType} from '../kafka/codecs.js'
import {CheckedProducer} from '../kafka/checked-producer.js'
import {isUnknownTopicError, TopicNotFoundError} from '../kafka/topics.js'
import {EventGenerator} from './generator.js'
import {sleep} from '../util/async.js'

export interface ProduceOptions {
  kafka: Kafka
  topic: string
  numDevices: number
  numMessages: number
  /** Pause after each send. */
  pauseMs: number
  /** Messages per send request. */
  batchSize: number
  seed: number
  /** How each send request's batch is compressed. Default: none. */
  compression?: CompressionName
  onProgress?: (sent: number) => void
  /** Aborting stops the run before its next send, also during a pause (e.g. on SIGINT). */
  stop?: AbortSignal
}

export interface ProduceSummary {
  topic: string
  messagesSent: number
  distinctDevices: number
  elapsedMs: number
  messagesPerSecond: number
  seed: number
  compression: CompressionName
}

/**
 * Fails at once with TopicNotFoundError when the topic is missing and the broker does not create
 * topics on first use; a send would retry for its whole retry time (about 45 s) first. A metadata
 * request asks the broker to create the topic where auto-creation is on, as the send would.
 */
async function requireTopic(kafka: Kafka, topic: string): Promise<void> {
  const admin = kafka.admin({retry: {retries: 2}})
  await admin.connect()
  try {
    await admin.fetchTopicMetadata({topics: [topic]})
  } catch (error) {
    throw isUnknownTopicError(error) ? new TopicNotFoundError(topic, {cause: error}) : error
  } finally {
    await admin.disconnect()
  }
}

/** Sends simulated device events; every send is acknowledged by all in-sync replicas before the next. */
export async function produceEvents(options: ProduceOptions): Promise<ProduceSummary> {
  const generator = new EventGenerator({numDevices: options.numDevices, seed: options.seed})
  await requireTopic(options.kafka, options.topic)
  const producer = new CheckedProducer(options.kafka, {allowAutoTopicCreation: true})
  await producer.connect()
  const compression = compressionType(options.compression ?? 'none')
  const started = Date.now()
  const {stop} = options
  let sent = 0
  try {
    while (sent < options.numMessages && !stop?.aborted) {
      const size = Math.min(options.batchSize, options.numMessages - sent)
      const messages: Message[] = new Array(size)
      for (let i = 0; i < size; i++) messages[i] = generator.next()
      await producer.send({topic: options.topic, messages, acks: -1, compression}).catch((error: unknown) => {
        throw isUnknownTopicError(error) ? new TopicNotFoundError(options.topic, {cause: error}) : error
      })
      sent += size
      options.onProgress?.(sent)
      // A stop ends the pause early: sleep rejects then, and the loop ends.
      if (options.pauseMs > 0 && sent < options.numMessages) await sleep(options.pauseMs, stop).catch(() => {})
    }
  } finally {
    await producer.disconnect()
  }
  const elapsedMs = Date.now() - started
  return {
    topic: options.topic,
    messagesSent: sent,
    distinctDevices: generator.distinctDevices,
    elapsedMs,
    messagesPerSecond: (sent * 1000) / Math.max(1, elapsedMs),
    seed: options.seed,
    compression: options.compression ?? 'none',
  }
}
