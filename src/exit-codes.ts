/**
 * Exit codes shared by every command (documented in the README):
 * 0 success; 1 the work failed (a value did not parse, the consumer hit a fault it could not get past);
 * 2 usage error (oclif's own code for bad flags); 3 a service (Kafka, Redis, ClickHouse) could not be
 * reached or refused the request; 130 forced stop by a second interrupt.
 */
export const EXIT_OK = 0
export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2
export const EXIT_UNAVAILABLE = 3
export const EXIT_FORCED = 130

const SERVICE_ERRORS = new Set(['BackendError', 'KafkaJSConnectionError', 'KafkaJSNumberOfRetriesExceeded', 'KafkaJSNonRetriableError', 'KafkaJSBrokerNotFound', 'KafkaJSRequestTimeoutError', 'TopicNotFoundError', 'KafkaUnreachableError'])

/** The exit code for an error that ended a command. */
export function exitCodeFor(error: unknown): number {
  let current: unknown = error
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    if (SERVICE_ERRORS.has(current.name)) return EXIT_UNAVAILABLE
    current = current.cause
  }
  return EXIT_FAILURE
}

/** One line for stderr: the message, and the root cause when it adds something. */
export function errorLine(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const cause = error.cause instanceof Error ? error.cause.message : undefined
  return cause && !error.message.includes(cause) ? `${error.message} (${cause})` : error.message
}
