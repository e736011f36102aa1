import {randomInt} from 'node:crypto'
import type {ICustomPartitioner} from 'kafkajs'

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
