import {type Admin, AssignerProtocol, type GroupDescription} from 'kafkajs'
import {committedOffsets, type PartitionLag, partitionLags} from './lag-monitor.js'
import {isUnknownTopicError, TopicNotFoundError} from './topics.js'

/** A consumer group's lag on its topics, read once with the admin API, as `kafka-consumer-groups --describe` shows it. */

/** A member of the group as the coordinator describes it. */
export interface GroupMember {
  memberId: string
  clientId: string
  host: string
  /** The partitions assigned to it, per topic. */
  assignment: Array<{topic: string; partitions: number[]}>
}

/** One partition: offsets, lag, and the member it is assigned to (undefined when none is). */
export interface GroupPartitionLag extends PartitionLag {
  member?: GroupMember
}

export interface GroupLag {
  group: string
  /** The group's state: Stable, Empty, PreparingRebalance, CompletingRebalance. */
  state: string
  /** By topic, then partition. */
  partitions: GroupPartitionLag[]
  members: GroupMember[]
  totalLag: number
}

/** The cluster knows no group of that name: it has neither members nor committed offsets. */
export class UnknownGroupError extends Error {
  override name = 'UnknownGroupError'
  readonly retriable = false
  constructor(readonly group: string) {
    super(`consumer group "${group}" does not exist (no members, no committed offsets)`)
  }
}

/** The topic asked about is not on the cluster. */
export class UnknownTopicError extends TopicNotFoundError {
  override name = 'UnknownTopicError'
  constructor(topic: string, options?: ErrorOptions) {
    super(topic, options)
    this.message = `topic "${topic}" does not exist`
  }
}

/**
 * Reads the lag of `group` on `topic`, or on every topic it has committed offsets for or members
 * assigned to. A partition without a committed offset counts its whole retained log as lag (what a
 * consumer that starts at the earliest offset has to read), and shows committed -1.
 */
export async function readGroupLag(admin: Admin, group: string, topic?: string): Promise<GroupLag> {
  // Asked before anything names the topic: kafkajs logs a request about a missing topic as an error.
  const existing = new Set(await admin.listTopics())
  if (topic !== undefined && !existing.has(topic)) throw new UnknownTopicError(topic)
  const [{groups}, committed] = await Promise.all([
    admin.describeGroups([group]),
    onTopic(topic, () => admin.fetchOffsets({groupId: group, topics: topic === undefined ? undefined : [topic]})),
  ])
  const description = groups.find((described) => described.groupId === group)
  const members = description ? groupMembers(description) : []
  const committedByTopic = new Map(committed.map((entry) => [entry.topic, committedOffsets(entry.partitions)]))
  const hasCommits = [...committedByTopic.values()].some((offsets) => offsets.size > 0)
  if (!hasCommits && members.length === 0 && (!description || description.state === 'Dead')) throw new UnknownGroupError(group)

  // Without --topic, offsets the group keeps for a deleted topic are left out.
  const topics = topic === undefined ? groupTopics(committedByTopic, members).filter((name) => existing.has(name)) : [topic]
  const perTopic = await Promise.all(
    topics.map(async (name) => {
      const ends = await onTopic(name, () => admin.fetchTopicOffsets(name))
      return partitionLags(name, ends, committedByTopic.get(name) ?? new Map(), true)
    }),
  )
  const owners = partitionOwners(members)
  const partitions = perTopic.flat().map((partition) => ({...partition, member: owners.get(`${partition.topic}\u0000${partition.partition}`)}))
  return {group, state: description?.state ?? 'Dead', partitions, members, totalLag: totalLag(partitions)}
}

/** `request`, with a missing topic said as {@link UnknownTopicError}. */
async function onTopic<T>(topic: string | undefined, request: () => Promise<T>): Promise<T> {
  try {
    return await request()
  } catch (error) {
    throw topic !== undefined && isUnknownTopicError(error) ? new UnknownTopicError(topic, {cause: error}) : error
  }
}

/** The topics the group has committed offsets for or members assigned to, in name order. */
function groupTopics(committed: ReadonlyMap<string, ReadonlyMap<number, number>>, members: readonly GroupMember[]): string[] {
  const topics = new Set<string>()
  for (const [name, offsets] of committed) if (offsets.size > 0) topics.add(name)
  for (const member of members) for (const assigned of member.assignment) topics.add(assigned.topic)
  return [...topics].sort()
}

/** The members of a described group, with their assignments decoded (empty for a group that is not a consumer group). */
export function groupMembers(description: GroupDescription): GroupMember[] {
  return description.members.map((member) => {
    let assignment: GroupMember['assignment'] = []
    if (description.protocolType === 'consumer' && member.memberAssignment.length > 0) {
      try {
        const decoded = AssignerProtocol.MemberAssignment.decode(member.memberAssignment)
        assignment = Object.entries(decoded?.assignment ?? {})
          .map(([name, partitions]) => ({topic: name, partitions: [...partitions].sort((a, b) => a - b)}))
          .sort((a, b) => a.topic.localeCompare(b.topic))
      } catch {
        assignment = []
      }
    }
    return {memberId: member.memberId, clientId: member.clientId, host: member.clientHost.replace(/^\//, ''), assignment}
  })
}

function partitionOwners(members: readonly GroupMember[]): Map<string, GroupMember> {
  const owners = new Map<string, GroupMember>()
  for (const member of members) {
    for (const {topic, partitions} of member.assignment) for (const partition of partitions) owners.set(`${topic}\u0000${partition}`, member)
  }
  return owners
}

/** Sum of the partitions' lag. */
export function totalLag(partitions: readonly PartitionLag[]): number {
  return partitions.reduce((sum, partition) => sum + partition.lag, 0)
}

/** Whether a total lag fails a `--max-lag` check: only when above it (at it passes). */
export function exceedsMaxLag(total: number, maxLag: number | undefined): boolean {
  return maxLag !== undefined && total > maxLag
}

const NONE = '-'

/** The columns of the table and of the piped lines, as kafka-consumer-groups names them. */
export const LAG_COLUMNS = ['TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID', 'HOST', 'CLIENT-ID'] as const

/** One row per partition: `-` for a committed offset the group has not got, and the member's columns of an unassigned partition. */
export function lagRows(lag: GroupLag): string[][] {
  return lag.partitions.map((partition) => [
    partition.topic,
    String(partition.partition),
    partition.committed >= 0 ? String(partition.committed) : NONE,
    String(partition.end),
    String(partition.lag),
    partition.member?.memberId ?? NONE,
    partition.member?.host ?? NONE,
    partition.member?.clientId ?? NONE,
  ])
}

/** Piped output: one space-separated line per partition (the columns of {@link LAG_COLUMNS}), then `total <lag>`. */
export function lagLines(lag: GroupLag): string[] {
  return [...lagRows(lag).map((row) => row.join(' ')), `total ${lag.totalLag}`]
}

export interface GroupLagJson {
  group: string
  state: string
  partitions: Array<{
    topic: string
    partition: number
    /** null when the group has no committed offset on the partition. */
    committed: number | null
    start: number
    end: number
    lag: number
    memberId: string | null
    clientId: string | null
    host: string | null
  }>
  members: GroupMember[]
  totalLag: number
  maxLag?: number
  /** With --max-lag: whether the total is above it (the exit code is then 1). */
  exceeded?: boolean
}

export function lagJson(lag: GroupLag, maxLag?: number): GroupLagJson {
  return {
    group: lag.group,
    state: lag.state,
    partitions: lag.partitions.map(({topic, partition, committed, start, end, lag: behind, member}) => ({
      topic,
      partition,
      committed: committed >= 0 ? committed : null,
      start,
      end,
      lag: behind,
      memberId: member?.memberId ?? null,
      clientId: member?.clientId ?? null,
      host: member?.host ?? null,
    })),
    members: lag.members,
    totalLag: lag.totalLag,
    ...(maxLag === undefined ? {} : {maxLag, exceeded: exceedsMaxLag(lag.totalLag, maxLag)}),
  }
}

/** Fewer and shorter retries than a consumer's: a lag check should say soon that Kafka cannot be reached. */
export const LAG_RETRY = {initialRetryTime: 300, maxRetryTime: 2000, retries: 3}

/** Kafka did not answer the lag's requests in time. */
export class LagTimeoutError extends Error {
  override name = 'LagTimeoutError'
  readonly retriable = true
}
