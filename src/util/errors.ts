/**
 * An error and those it wraps, outermost first: `cause`, or kafkajs's `originalError`; at most
 * five deep.
 */
export function errorChain(error: unknown): Error[] {
  const chain: Error[] = []
  for (let current = error; current instanceof Error && chain.length < 5;) {
    chain.push(current)
    const wrapped = current as {originalError?: unknown; cause?: unknown}
    current = wrapped.originalError ?? wrapped.cause
  }
  return chain
}

/** The message of an error, or the thrown value as text when it is not an Error (all of it, every line). */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** A one-line reason for an error from a client library, never empty (AggregateError, bare codes). */
export function errorReason(error: unknown): string {
  if (error instanceof AggregateError && !error.message) {
    const reasons = [...new Set(error.errors.map((inner) => errorReason(inner)))]
    if (reasons.length > 0) return reasons.join('; ')
  }
  if (error instanceof Error) {
    const code = (error as {code?: unknown}).code
    const message = error.message.split('\n')[0].trim()
    if (message) return message
    if (typeof code === 'string') return code
    return error.name
  }
  return String(error)
}

/**
 * One line for stderr: the message, and the root cause when it adds something (an error with
 * `includesCause` set has put it in its message already).
 */
export function errorLine(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  if ((error as {includesCause?: boolean}).includesCause) return error.message
  const cause = error.cause instanceof Error ? error.cause.message.split('\n')[0] : undefined
  return cause && !error.message.includes(cause) ? `${error.message} (${cause})` : error.message
}
