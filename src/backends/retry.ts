import {sleep} from '../util/async.js'

/** How a backend retries a failed write: capped exponential backoff, optionally bounded in time. */
export interface RetryPolicy {
  /** Wait before the first retry. */
  initialDelayMs: number
  /** Longest wait between two attempts. */
  maxDelayMs: number
  /** Give up once this much time passed since the first failure; undefined retries forever. */
  maxRetryTimeMs?: number
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {initialDelayMs: 200, maxDelayMs: 5000}

/** The wait before retry number `retry` (1-based): doubles from `initialDelayMs` up to `maxDelayMs`. */
export function backoffDelayMs(policy: RetryPolicy, retry: number): number {
  const exponent = Math.min(Math.max(retry - 1, 0), 30)
  return Math.min(policy.initialDelayMs * 2 ** exponent, policy.maxDelayMs)
}

/**
 * Runs `attempt` until it succeeds. Each failure is passed to `onFailure` together with the wait
 * before the next attempt. Rejects with the failure when `isRetryable` says it is permanent, when
 * `policy.maxRetryTimeMs` has passed since the first failure, or with `signal.reason` when `signal`
 * aborts (e.g. the backend closes).
 */
export async function retryWithBackoff<T>(
  attempt: () => Promise<T>,
  options: {
    policy: RetryPolicy
    onFailure: (error: unknown, retryInMs: number) => void
    isRetryable?: (error: unknown) => boolean
    signal?: AbortSignal
  },
): Promise<T> {
  const {policy, onFailure, isRetryable, signal} = options
  let firstFailureAt: number | undefined
  for (let retry = 1; ; retry++) {
    if (signal?.aborted) throw signal.reason
    try {
      return await attempt()
    } catch (error) {
      if (signal?.aborted) throw signal.reason
      if (isRetryable && !isRetryable(error)) throw error
      firstFailureAt ??= Date.now()
      const elapsed = Date.now() - firstFailureAt
      if (policy.maxRetryTimeMs !== undefined && elapsed >= policy.maxRetryTimeMs) throw error
      let delay = backoffDelayMs(policy, retry)
      if (policy.maxRetryTimeMs !== undefined) delay = Math.min(delay, policy.maxRetryTimeMs - elapsed)
      onFailure(error, delay)
      await sleep(delay, signal)
    }
  }
}
