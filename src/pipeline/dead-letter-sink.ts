import type {CompressionTypes, IHeaders, Kafka, KafkaMessage, Message} from 'kafkajs'
import {CheckedProducer} from '../kafka/checked-producer.js'
import {type CompressionName, compressionType} from '../kafka/codecs.js'

/** Headers of a dead letter: why and where the original message was refused. */
export const DLQ_HEADER_PREFIX = 'ipc.error.'

/**
 * Invalid messages, produced to a dead-letter topic with the reason in headers. Each send is
 * acknowledged by all in-sync replicas before the batch's offset can be committed.
 */
export class DeadLetterSink {
  private readonly producer: CheckedProducer
  private readonly compression: CompressionTypes

  constructor(
    kafka: Kafka,
    readonly topic: string,
    compression: CompressionName = 'none',
  ) {
    this.compression = compressionType(compression)
    this.producer = new CheckedProducer(kafka, {allowAutoTopicCreation: true, idempotent: false})
  }

  connect(): Promise<void> {
    return this.producer.connect()
  }

  async send(letters: Message[]): Promise<void> {
    if (letters.length > 0) await this.producer.send({topic: this.topic, messages: letters, acks: -1, compression: this.compression})
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect()
  }
}

/** The dead letter of `message`: its key, value and headers, plus the reason and its origin. */
export function deadLetter(message: KafkaMessage, topic: string, partition: number, reason: string, detail: string): Message {
  return {
    key: message.key,
    value: message.value,
    headers: {
      ...(message.headers as IHeaders | undefined),
      [`${DLQ_HEADER_PREFIX}reason`]: reason,
      [`${DLQ_HEADER_PREFIX}detail`]: detail,
      [`${DLQ_HEADER_PREFIX}topic`]: topic,
      [`${DLQ_HEADER_PREFIX}partition`]: String(partition),
      [`${DLQ_HEADER_PREFIX}offset`]: message.offset,
    },
  }
}
