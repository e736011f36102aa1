import type {CountBackend} from '../backends/backend.js'
import {INVALID_REASONS, type InvalidReason} from '../events/event.js'

export type StopReason = 'signal' | 'idle' | 'max-messages' | 'error'

export interface ConsumeStats {
  processed: number
  valid: number
  invalid: number
  invalidByReason: Record<InvalidReason, number>
  deadLettered: number
  /** Failed backend write attempts (each was retried). */
  backendErrors: number
  /** Next offset to read, per partition, as committed to the group. */
  committed: Record<number, string>
  startedAt: number
  joinedAt?: number
  firstMessageAt?: number
  lastMessageAt?: number
}

export interface ConsumeReport {
  totalDevices?: number
  countError?: string
  /** The group's lag on the topic, summed over its partitions, as last read; undefined before the first read. */
  lag?: number
  /** Partitions with events left to read that do not advance, in words; undefined when none. */
  stall?: string
  eventsPerSecond: number
  stats: ConsumeStats
}

export interface ConsumeSummary extends ConsumeReport {
  reason: StopReason
  elapsedMs: number
  /** Time from start until the group assigned partitions. */
  joinMs?: number
  /** Events/s from the first to the last message processed. */
  steadyEventsPerSecond: number
}

/** What a report or the summary says of the backend's count: the count, or why it could not be read. */
export type CountResult = {totalDevices?: number; countError?: string}

/** Stats of a consumer that has processed nothing yet, starting now. */
export function emptyConsumeStats(): ConsumeStats {
  return {
    processed: 0,
    valid: 0,
    invalid: 0,
    invalidByReason: Object.fromEntries(INVALID_REASONS.map((reason) => [reason, 0])) as Record<InvalidReason, number>,
    deadLettered: 0,
    backendErrors: 0,
    committed: {},
    startedAt: Date.now(),
  }
}

/** The backend's count for a report; a failure is reported, not thrown. */
export async function countDevices(backend: Pick<CountBackend, 'count'>): Promise<CountResult> {
  try {
    return {totalDevices: await backend.count()}
  } catch (error) {
    return {countError: (error as Error).message}
  }
}

export interface ReportSource {
  stats: ConsumeStats
  backend: Pick<CountBackend, 'count'>
  /** The group's lag as last read. */
  lag: () => number | undefined
  /** Partitions with events left to read that do not advance, in words. */
  stall?: () => string | undefined
}

/** Calls `onReport` every `intervalMs` with the count, the lag and the rate since the last report; undefined when off. */
export function startReports(source: ReportSource, intervalMs: number, onReport?: (report: ConsumeReport) => void): NodeJS.Timeout | undefined {
  if (!onReport || intervalMs <= 0) return undefined
  const {stats} = source
  let lastProcessed = 0
  let lastAt = Date.now()
  return setInterval(async () => {
    const now = Date.now()
    const eventsPerSecond = ((stats.processed - lastProcessed) * 1000) / Math.max(1, now - lastAt)
    lastProcessed = stats.processed
    lastAt = now
    onReport({...(await countDevices(source.backend)), lag: source.lag(), stall: source.stall?.(), eventsPerSecond, stats})
  }, intervalMs)
}

/** The summary of a run that stopped now: its stats with the rates and times derived from them. */
export function summarise(stats: ConsumeStats, reason: StopReason, counted: CountResult, lag: number | undefined): ConsumeSummary {
  const elapsedMs = Date.now() - stats.startedAt
  const {firstMessageAt, lastMessageAt, joinedAt} = stats
  const activeMs = firstMessageAt !== undefined && lastMessageAt !== undefined ? lastMessageAt - firstMessageAt : 0
  return {
    reason,
    ...counted,
    lag,
    stats,
    elapsedMs,
    joinMs: joinedAt === undefined ? undefined : joinedAt - stats.startedAt,
    eventsPerSecond: (stats.processed * 1000) / Math.max(1, elapsedMs),
    steadyEventsPerSecond: activeMs > 0 ? (stats.processed * 1000) / activeMs : 0,
  }
}

/** Several members' stats as one consumer's: counts added, committed offsets merged, the first and last message over all. */
export function addUpStats(each: readonly ConsumeStats[]): ConsumeStats {
  const stats: ConsumeStats = {
    ...emptyConsumeStats(),
    processed: sum(each, (one) => one.processed),
    valid: sum(each, (one) => one.valid),
    invalid: sum(each, (one) => one.invalid),
    deadLettered: sum(each, (one) => one.deadLettered),
    backendErrors: sum(each, (one) => one.backendErrors),
    committed: Object.assign({}, ...each.map((one) => one.committed)) as Record<number, string>,
    firstMessageAt: extreme(
      Math.min,
      each.map((one) => one.firstMessageAt),
    ),
    lastMessageAt: extreme(
      Math.max,
      each.map((one) => one.lastMessageAt),
    ),
  }
  for (const reason of INVALID_REASONS) stats.invalidByReason[reason] = sum(each, (one) => one.invalidByReason[reason])
  return stats
}

function sum<T>(items: readonly T[], value: (item: T) => number): number {
  return items.reduce((total, item) => total + value(item), 0)
}

/** The earliest (Math.min) or latest (Math.max) of the times that are known. */
function extreme(pick: (...values: number[]) => number, times: Array<number | undefined>): number | undefined {
  const known = times.filter((time): time is number => time !== undefined)
  return known.length === 0 ? undefined : pick(...known)
}
