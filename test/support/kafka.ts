import {execFile} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import {type Admin, AssignerProtocol, Kafka, logLevel} from 'kafkajs'
import {createTopic as createKafkaTopic} from '../../src/kafka/topics.js'
import {retryWhileRetriable} from '../../src/util/async.js'
import {serviceUrls} from './services.js'

/**
 * The Apache Kafka broker of the tests (scripts/services): topics made with the admin API, and real
 * faults — a node stopped and started again, or killed with SIGKILL — done to the broker's process.
 */

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const STATE_DIR = process.env.IPC_STATE_DIR ?? `${REPO_ROOT}.ipc-services`

export class KafkaServiceError extends Error {
  override name = 'KafkaServiceError'
}

/** A kafkajs client for test set-up and checks (its own log silenced). */
export function kafkaAdminClient(brokers: readonly string[] = serviceUrls().kafkaBrokers): Kafka {
  return new Kafka({clientId: 'ipc-test-admin', brokers: [...brokers], logLevel: logLevel.NOTHING, connectionTimeout: 3000})
}

export interface TopicOptions {
  /** Replicas per partition; default: the broker's default.replication.factor. */
  replication?: number
  brokers?: readonly string[]
}

/** Runs a Kafka request again while the broker answers it with a retriable error (up to 30 s). */
function retryRetriable<T>(request: () => Promise<T>): Promise<T> {
  return retryWhileRetriable(request, 30_000)
}

async function withAdmin<T>(brokers: readonly string[] | undefined, work: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafkaAdminClient(brokers).admin()
  await admin.connect()
  try {
    return await work(admin)
  } finally {
    await admin.disconnect()
  }
}

/** Creates a topic with `partitions` partitions and waits until every partition has a leader. */
export async function createTopic(name: string, partitions: number, options: TopicOptions = {}): Promise<void> {
  await createKafkaTopic(kafkaAdminClient(options.brokers), {topic: name, partitions, replication: options.replication})
}

async function leadersOf(admin: Admin, topic: string): Promise<Map<number, number>> {
  const {topics} = await admin.fetchTopicMetadata({topics: [topic]})
  return new Map(topics[0].partitions.map((partition) => [partition.partitionId, partition.leader]))
}

/** Partition → node id of its leader. */
export async function partitionLeaders(topic: string, brokers?: readonly string[]): Promise<Map<number, number>> {
  return withAdmin(brokers, (admin) => retryRetriable(() => leadersOf(admin, topic)))
}

/** Sum over partitions of a group's committed offsets (0 for a partition without a commit). */
export async function committedTotal(groupId: string, topic: string, brokers?: readonly string[]): Promise<number> {
  return withAdmin(brokers, async (admin) => {
    const [offsets] = await retryRetriable(() => admin.fetchOffsets({groupId, topics: [topic]}))
    return offsets.partitions.reduce((sum, partition) => sum + Math.max(0, Number(partition.offset)), 0)
  })
}

/**
 * Runs `scripts/services <verb> <names…>` without blocking the event loop (the `ipc` processes a
 * test runs keep writing to their pipes meanwhile); rejects with its output when it fails.
 */
export function servicesCommand(verb: string, ...names: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', [`${REPO_ROOT}scripts/services`, verb, ...names], {cwd: REPO_ROOT, encoding: 'utf8', timeout: 5 * 60_000}, (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`.trim()
      if (error) reject(new KafkaServiceError(`scripts/services ${verb} ${names.join(' ')} failed (${error.code ?? error.signal}): ${output}`))
      else resolve(output)
    })
  })
}

/** The pid of a Kafka node: `kafka` (the single node) or `kafka-cluster-<id>`. */
export function kafkaNodePid(node: string): number {
  const pid = Number(readFileSync(`${STATE_DIR}/${node}.pid`, 'utf8').trim())
  if (!Number.isInteger(pid) || pid <= 0) throw new KafkaServiceError(`no pid recorded for ${node}`)
  return pid
}

/** kill -9 of a Kafka node; it stays down until `startKafka`. */
export function killKafka(node: string): void {
  process.kill(kafkaNodePid(node), 'SIGKILL')
}

/** A controlled shutdown (SIGTERM) that keeps the node's data. */
export async function stopKafka(node: string): Promise<void> {
  await servicesCommand('stop', node)
}

/** Starts a stopped or killed node again with its data, and waits until it answers requests. */
export async function startKafka(node: string): Promise<void> {
  await servicesCommand('up', node.startsWith('kafka-cluster') ? 'kafka-cluster' : node)
}

/** A consumer group as the coordinator describes it: its state and the partitions of each member. */
export interface GroupAssignment {
  state: string
  /** Partitions of `topic` per member, one entry per member. */
  partitionsPerMember: number[]
}

export async function groupAssignment(groupId: string, topic: string, brokers?: readonly string[]): Promise<GroupAssignment> {
  return withAdmin(brokers, async (admin) => {
    const {groups} = await retryRetriable(() => admin.describeGroups([groupId]))
    const [group] = groups
    const partitionsPerMember = group.members.map((member) => {
      const assignment = AssignerProtocol.MemberAssignment.decode(member.memberAssignment)
      return assignment?.assignment[topic]?.length ?? 0
    })
    return {state: group.state, partitionsPerMember}
  })
}

/** One message of a topic: where it is and its key. */
export interface StoredMessage {
  partition: number
  offset: string
  key: string
}

/** Every message of a topic as the broker holds it now (read by a consumer of its own, no commits). */
export async function readTopic(topic: string, timeoutMs = 60_000): Promise<StoredMessage[]> {
  const kafka = kafkaAdminClient()
  const ends = await withAdmin(undefined, (admin) => retryRetriable(() => admin.fetchTopicOffsets(topic)))
  const remaining = new Map(ends.filter((end) => Number(end.high) > Number(end.low)).map((end) => [end.partition, end.high]))
  const messages: StoredMessage[] = []
  if (remaining.size === 0) return messages
  const consumer = kafka.consumer({groupId: `ipc-test-reader-${process.pid}-${Date.now()}`})
  await consumer.connect()
  try {
    await consumer.subscribe({topics: [topic], fromBeginning: true})
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`read ${messages.length} messages of ${topic} within ${timeoutMs} ms; partitions left: ${[...remaining.keys()]}`)),
        timeoutMs,
      )
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({batch}) => {
            for (const message of batch.messages) messages.push({partition: batch.partition, offset: message.offset, key: message.key?.toString() ?? ''})
            if (BigInt(batch.lastOffset()) + 1n >= BigInt(remaining.get(batch.partition) ?? '0')) remaining.delete(batch.partition)
            if (remaining.size === 0) {
              clearTimeout(timer)
              resolve()
            }
          },
        })
        .catch(reject)
    })
  } finally {
    await consumer.disconnect()
  }
  return messages
}
