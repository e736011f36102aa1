/** Waits `ms`; rejects with the signal's reason if it is aborted first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal?.reason)
    }
    signal?.addEventListener('abort', onAbort, {once: true})
  })
}

/** Resolves or rejects like `promise`, or rejects with `onTimeout()` after `ms`, whichever is first. */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms)
  })
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer))
}

/** Resolves like `promise`, or with undefined once `ms` have passed without it settling. */
export function settleWithin<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms)
  })
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer))
}

/**
 * Runs `request` again, every `intervalMs`, while it fails with an error marked `retriable` (as
 * kafkajs and this project mark theirs), for up to `timeoutMs`; then the last error is thrown.
 */
export async function retryWhileRetriable<T>(request: () => Promise<T>, timeoutMs: number, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      return await request()
    } catch (error) {
      if (!(error as {retriable?: boolean}).retriable || Date.now() > deadline) throw error
      await sleep(intervalMs)
    }
  }
}
