import {formatIsoMillis} from '../events/timestamp.js'
import {KafkaAuthenticationError, KafkaUnreachableError} from '../kafka/client.js'
import {type GroupLag, type GroupLagJson, lagJson, LagTimeoutError, UnknownGroupError, UnknownTopicError} from '../kafka/group-lag.js'
import {errorChain} from '../util/errors.js'
import type {FreshnessOutcome} from './count-source.js'

/**
 * The answer of `GET /pipeline`: the consumer group's lag and how fresh the backend's data is, each
 * with a state the dashboard shows as it is. Pure: from outcomes already read to JSON.
 */

/** The group whose lag `ipc serve` follows (`--brokers`, `--group`, `--topic`). */
export interface LagTarget {
  brokers: string
  group: string
  topic?: string
}

export type LagOutcome = {ok: true; lag: GroupLag; completedAt: number} | {ok: false; error: Error; completedAt: number}

/** Why there is no lag to show. */
export type LagProblem = 'kafka-unreachable' | 'kafka-refused' | 'group-unknown' | 'topic-unknown' | 'kafka-error'

export type PipelineLagJson =
  | {state: 'not-configured'}
  | ({state: 'ok'; brokers: string; topic: string | null; groupState: string; checkedAt: string} & Omit<GroupLagJson, 'state' | 'maxLag' | 'exceeded'>)
  | {state: LagProblem; brokers: string; group: string; topic: string | null; error: string; checkedAt: string}

export type PipelineFreshnessJson =
  | {state: 'ok'; backend: string; location: string; measure: string; at: string; ageMs: number; checkedAt: string}
  | {state: 'no-data'; backend: string; location: string; measure: string; at: null; ageMs: null; checkedAt: string}
  | {state: 'backend-down'; backend: string; location: string; error: string; checkedAt: string}
  | {state: 'unsupported'; backend: string; location: string}

export interface PipelineJson {
  lag: PipelineLagJson
  freshness: PipelineFreshnessJson
}

/** Errors of kafkajs that mean no broker could be talked to (raised once the client had reached one before). */
const CONNECTION_ERRORS = new Set(['KafkaJSConnectionError', 'KafkaJSNumberOfRetriesExceeded', 'KafkaJSRequestTimeoutError', 'KafkaJSConnectionClosedError'])

/** What a failed lag read means for the page. */
export function lagProblemOf(error: unknown): LagProblem {
  if (error instanceof UnknownGroupError) return 'group-unknown'
  if (error instanceof UnknownTopicError) return 'topic-unknown'
  if (error instanceof KafkaAuthenticationError) return 'kafka-refused'
  if (error instanceof KafkaUnreachableError || error instanceof LagTimeoutError) return 'kafka-unreachable'
  const chain = errorChain(error)
  if (chain.some((cause) => CONNECTION_ERRORS.has(cause.name) || cause.message === 'Broker not connected')) return 'kafka-unreachable'
  return 'kafka-error'
}

/** The lag part: not configured without a target; else the group's lag, or why it could not be read (`redact` removes secrets). */
export function lagPart(target: LagTarget | undefined, outcome: LagOutcome | undefined, redact: (text: string) => string): PipelineLagJson {
  if (!target || !outcome) return {state: 'not-configured'}
  const where = {brokers: target.brokers, topic: target.topic ?? null}
  const checkedAt = formatIsoMillis(outcome.completedAt)
  if (!outcome.ok) {
    return {state: lagProblemOf(outcome.error), ...where, group: target.group, error: redact(outcome.error.message), checkedAt}
  }
  const {state: groupState, group, partitions, members, totalLag} = lagJson(outcome.lag)
  return {state: 'ok', ...where, group, groupState, totalLag, partitions, members, checkedAt}
}

/** The freshness part, its age read against `nowMs` (the time of the reply, not of the cached answer). */
export function freshnessPart(outcome: FreshnessOutcome, backend: {name: string; location: string}, nowMs: number): PipelineFreshnessJson {
  const {name, location} = backend
  const where = {backend: name, location}
  if (!outcome.ok)
    return {
      state: 'backend-down',
      backend: outcome.error.backend,
      location: outcome.error.location,
      error: outcome.error.message,
      checkedAt: formatIsoMillis(outcome.completedAt),
    }
  if (outcome.measure === undefined) return {state: 'unsupported', ...where}
  const checkedAt = formatIsoMillis(outcome.completedAt)
  if (outcome.atMs === undefined) return {state: 'no-data', ...where, measure: outcome.measure, at: null, ageMs: null, checkedAt}
  return {state: 'ok', ...where, measure: outcome.measure, at: formatIsoMillis(outcome.atMs), ageMs: nowMs - outcome.atMs, checkedAt}
}
