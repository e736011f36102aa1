import kafkajs from 'kafkajs'
import {BackendError} from '../backends/backend.js'
import {IdentifierError} from '../backends/identifiers.js'
import {DashboardOptionError} from '../http/dashboard.js'
import {HttpLimitsError, WebConfigError} from '../http/web-errors.js'
import {KafkaAuthenticationError, KafkaSettingsError, KafkaUnreachableError} from '../kafka/client.js'
import {UnreadableBatchError} from '../kafka/codecs.js'
import {KafkaSecurityError} from '../kafka/security.js'
import {LagTimeoutError, UnknownGroupError} from '../kafka/group-lag.js'
import {TopicNotFoundError} from '../kafka/topics.js'
import {GroupHasOffsetsError} from '../kafka/start-offsets.js'
import {KafkaStallError} from '../pipeline/catch-up.js'
import {ConsumerPoolError} from '../pipeline/member-events.js'
import {CountQueryError} from '../query/count-query.js'
import {DurationError} from '../util/duration.js'
import {errorChain} from '../util/errors.js'

/**
 * Exit codes shared by every command (documented in the README):
 * 0 success; 1 the work failed (a value did not parse, the consumer hit a fault it could not get past);
 * 2 usage error (oclif's own code for bad flags); 3 a service (Kafka, Redis, ClickHouse) could not be
 * reached or refused the request; 4 a Kafka record batch that cannot be read (corrupt, or an unknown
 * codec), with nothing from it on committed; 130 forced stop by a second signal.
 */
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2
export const EXIT_UNAVAILABLE = 3
export const EXIT_UNREADABLE_BATCH = 4
export const EXIT_FORCED = 130

type ErrorClass = abstract new (...args: never[]) => Error

// kafkajs defines its error classes on module.exports at run time, out of reach of named imports.
const {KafkaJSBrokerNotFound, KafkaJSConnectionError, KafkaJSNonRetriableError, KafkaJSRequestTimeoutError} = kafkajs

/**
 * The errors that mean a service could not be reached or refused the request (exit 3). kafkajs's
 * non-retriable errors include its "number of retries exceeded" and authentication failures.
 */
const UNAVAILABLE: readonly ErrorClass[] = [
  BackendError,
  KafkaUnreachableError,
  KafkaAuthenticationError,
  TopicNotFoundError,
  KafkaStallError,
  LagTimeoutError,
  KafkaJSConnectionError,
  KafkaJSNonRetriableError,
  KafkaJSBrokerNotFound,
  KafkaJSRequestTimeoutError,
]

/** The errors that mean a flag, name or query given cannot be used (exit 2). */
const USAGE: readonly ErrorClass[] = [
  GroupHasOffsetsError,
  IdentifierError,
  CountQueryError,
  DashboardOptionError,
  DurationError,
  KafkaSettingsError,
  KafkaSecurityError,
  UnknownGroupError,
  WebConfigError,
  HttpLimitsError,
]

/**
 * The exit code for an error that ended a command, from its class or that of an error it wraps:
 * a pool worker's failure keeps the code its worker gave it; 4 an unreadable batch, else 3 a service unavailable, else 2 a usage error, else 1.
 */
export function exitCodeFor(error: unknown): number {
  const chain = errorChain(error)
  const fromWorker = chain.find((current) => current instanceof ConsumerPoolError)
  if (fromWorker instanceof ConsumerPoolError) return fromWorker.exitCode
  const isA = (types: readonly ErrorClass[]) => chain.some((current) => types.some((type) => current instanceof type))
  if (chain.some((current) => current instanceof UnreadableBatchError)) return EXIT_UNREADABLE_BATCH
  if (isA(UNAVAILABLE)) return EXIT_UNAVAILABLE
  if (isA(USAGE)) return EXIT_USAGE
  return EXIT_FAILURE
}
