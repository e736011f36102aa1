import type {KafkaMessage, Message} from 'kafkajs'
import type {DeviceEvent} from '../backends/backend.js'
import {type InvalidReason, parseEvent} from '../events/event.js'
import {UnreadableBatchError, undecodableReason} from '../kafka/codecs.js'
import {deadLetter} from './dead-letter-sink.js'

/** One fetched batch of a partition, as the step reads it. */
export interface BatchInput {
  topic: string
  partition: number
  messages: readonly KafkaMessage[]
  /** The batch's last offset, control records included (kafkajs's `batch.lastOffset()`). */
  lastOffset: () => string
  /** Messages the step may take at most (what `--max-messages` leaves). */
  limit: number
  /** Whether invalid messages become dead letters. */
  deadLetters: boolean
  /** False once the consumer stops: the step takes no more messages. */
  isRunning: () => boolean
}

export interface InvalidMessage {
  reason: InvalidReason
  offset: string
  detail: string
}

export interface BatchStep {
  /** Messages taken (valid and invalid). */
  processed: number
  events: DeviceEvent[]
  invalid: InvalidMessage[]
  invalidByReason: Partial<Record<InvalidReason, number>>
  deadLetters: Message[]
  /**
   * The offset to resolve: the batch's last offset when every message was taken (past the control
   * records that end a transactional partition), else the last message taken; undefined when none was.
   */
  lastOffset?: string
  /** A record batch that could not be read stopped the step there; what came before it is in the result. */
  unreadable?: UnreadableBatchError
}

/**
 * The consumer's work on one batch, without I/O: validate each message, keep the valid events
 * with their Kafka source, the invalid ones by reason (and as dead letters), and say how far the
 * partition was read. Stops at the limit, when the consumer stops, or at a batch it cannot read.
 */
export function readBatch(input: BatchInput): BatchStep {
  const {topic, partition} = input
  const step: BatchStep = {processed: 0, events: [], invalid: [], invalidByReason: {}, deadLetters: []}
  let complete = true
  for (const message of input.messages) {
    if (step.processed >= input.limit || !input.isRunning()) {
      complete = false
      break
    }
    // A value no producer writes starts with a NUL: only then is it worth asking.
    if (message.value !== null && message.value[0] === 0) {
      const reason = undecodableReason(message.value)
      if (reason !== undefined) {
        step.unreadable = new UnreadableBatchError(topic, partition, message.offset, reason)
        return step
      }
    }
    const result = parseEvent(message.value)
    step.processed++
    if (result.ok) {
      result.event.source = {topic, partition, offset: message.offset}
      step.events.push(result.event)
    } else {
      step.invalid.push({reason: result.reason, offset: message.offset, detail: result.detail})
      step.invalidByReason[result.reason] = (step.invalidByReason[result.reason] ?? 0) + 1
      if (input.deadLetters) step.deadLetters.push(deadLetter(message, topic, partition, result.reason, result.detail))
    }
    step.lastOffset = message.offset
  }
  if (complete && step.lastOffset !== undefined) step.lastOffset = input.lastOffset()
  return step
}
