import kafkajs from 'kafkajs'
import {BackendError} from '../backends/backend.js'
import {KafkaAuthenticationError, KafkaUnreachableError} from '../kafka/client.js'
import {UnreadableBatchError} from '../kafka/codecs.js'
import {KafkaStallError} from '../pipeline/catch-up.js'
import {TopicNotFoundError} from '../kafka/topics.js'
import {errorChain} from '../util/errors.js'

/**
 * Exit codes shared by every command (documented in the README):
 * 0 success; 1 the work failed (a value did not parse, the consumer hit a fault it could not get past);
 * 2 usage error (oclif's own code for bad flags); 3 a service (Kafka, Redis, ClickHouse) could not be
 * reached or refused the request; 4 a Kafka record batch that cannot be read (corrupt, or an unknown
 * codec), with nothing from it on committed; 130 forced stop by a second interrupt.
 */
export const EXIT_OK = 0
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
  KafkaJSConnectionError,
  KafkaJSNonRetriableError,
  KafkaJSBrokerNotFound,
  KafkaJSRequestTimeoutError,
]

/** The exit code for an error that ended a command: its own, or that of an error it wraps. */
export function exitCodeFor(error: unknown): number {
  if (errorChain(error).some((current) => current instanceof UnreadableBatchError)) return EXIT_UNREADABLE_BATCH
  const unavailable = errorChain(error).some((current) => UNAVAILABLE.some((type) => current instanceof type))
  return unavailable ? EXIT_UNAVAILABLE : EXIT_FAILURE
}
