import type {Kafka} from 'kafkajs'
import {formatIsoMillis} from '../events/timestamp.js'
import {isUnknownTopicError, TopicNotFoundError} from './topics.js'

/** `--from-time` was refused: the group has committed offsets and `--reset-offsets` was not given. */
export class GroupHasOffsetsError extends Error {
  override name = 'GroupHasOffsetsError'
}

export interface StartAtTime {
  groupId: string
  topic: string
  /** Epoch ms: each partition starts at its first message with a timestamp at or after this. */
  timeMs: number
  /** Move offsets the group has already committed too. */
  reset: boolean
}

/** Where each partition of the group starts, and whether it had committed offsets before. */
export interface StartOffsets {
  partitions: Array<{partition: number; offset: string}>
  replaced: boolean
}

/**
 * Commits, for a group, the first offset at or after a time in each partition of the topic (Kafka's
 * offsets-for-times, as kcat's `-o s@<ts>` and `kafka-consumer-groups --reset-offsets --to-datetime`),
 * so the consumer that joins next starts there. A partition with no message that late starts at
 * its end. Refused for a group that has committed offsets on the topic unless `reset`: replaying
 * is then a choice, never a side effect. The group must have no active member while its offsets
 * move (Kafka refuses otherwise), which holds before `ipc consume` joins.
 */
export async function startGroupAtTime(kafka: Kafka, start: StartAtTime): Promise<StartOffsets> {
  const admin = kafka.admin()
  await admin.connect()
  try {
    const [committed] = await admin.fetchOffsets({groupId: start.groupId, topics: [start.topic]})
    const replaced = (committed?.partitions ?? []).some((partition) => Number(partition.offset) >= 0)
    if (replaced && !start.reset) {
      throw new GroupHasOffsetsError(
        `group ${start.groupId} has committed offsets on ${start.topic}: --from-time ${formatIsoMillis(start.timeMs)} would move them; ` +
          'add --reset-offsets to replay from that time, or use a new --group',
      )
    }
    const found = await admin.fetchTopicOffsetsByTimestamp(start.topic, start.timeMs).catch((error: unknown) => {
      throw isUnknownTopicError(error) ? new TopicNotFoundError(start.topic, {cause: error}) : error
    })
    const partitions = found.map(({partition, offset}) => ({partition, offset}))
    await admin.setOffsets({groupId: start.groupId, topic: start.topic, partitions})
    return {partitions, replaced}
  } finally {
    await admin.disconnect().catch(() => undefined)
  }
}
