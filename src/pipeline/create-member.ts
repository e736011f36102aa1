import type {Kafka} from 'kafkajs'
import {DEFAULT_FETCH_MAX_BYTES, DEFAULT_MAX_PARTITION_FETCH_BYTES, DEFAULT_SESSION_TIMEOUT_MS} from '../cli/defaults.js'
import type {CompressionName} from '../kafka/codecs.js'
import {DeadLetterSink} from './dead-letter-sink.js'
import {GroupMember, type MemberBackend} from './group-member.js'

export interface MemberSettings {
  topic: string
  groupId: string
  fromBeginning: boolean
  /** How long a member that stopped heartbeating (crashed) keeps its partitions. */
  sessionTimeoutMs?: number
  maxMessages?: number
  /** Invalid messages are produced here with the reason in headers, before their offsets are committed. */
  dlqTopic?: string
  /** How dead letters are compressed. Default: none. */
  dlqCompression?: CompressionName
  /** Most bytes one fetch returns over all partitions; a fetch is decoded whole before its batches are processed. */
  fetchMaxBytes?: number
  /** Most bytes one fetch returns per partition. */
  maxPartitionFetchBytes?: number
}

/** A member with its own kafkajs consumer (and dead-letter producer) of `kafka`. */
export function createGroupMember(kafka: Kafka, backend: MemberBackend, settings: MemberSettings, log: (line: string) => void): GroupMember {
  const sessionTimeout = settings.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS
  const heartbeatIntervalMs = Math.max(100, Math.floor(sessionTimeout / 10))
  const consumer = kafka.consumer({
    groupId: settings.groupId,
    sessionTimeout,
    heartbeatInterval: heartbeatIntervalMs,
    allowAutoTopicCreation: true,
    // A fetch long-poll holds a clean stop until it returns; keep it short.
    maxWaitTimeInMs: 500,
    maxBytes: settings.fetchMaxBytes ?? DEFAULT_FETCH_MAX_BYTES,
    maxBytesPerPartition: settings.maxPartitionFetchBytes ?? DEFAULT_MAX_PARTITION_FETCH_BYTES,
  })
  const deadLetters = settings.dlqTopic ? new DeadLetterSink(kafka, settings.dlqTopic, settings.dlqCompression) : undefined
  const {topic, groupId, fromBeginning, maxMessages} = settings
  return new GroupMember({consumer, topic, groupId, fromBeginning, backend, deadLetters, heartbeatIntervalMs, maxMessages, log})
}
