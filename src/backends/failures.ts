import {BackendError} from './backend.js'

/** What a backend says about the failures of its service. */
export interface FailureWording {
  /** The message for a failure of `action` that is not a BackendError yet; names the location, never a password. */
  message(action: string, error: unknown): string
  /** The backend's one classification: whether retrying may help (unreachable, timed out, busy) or not (a refusal). */
  isTransient(error: unknown): boolean
}

/**
 * Turns whatever a backend's client library raises into the BackendError the backend rejects with,
 * the same way for every operation (connect, writes, counts) so that `retriable` always comes from
 * one classification.
 */
export class BackendFailures {
  constructor(
    readonly backend: string,
    readonly location: string,
    private readonly wording: FailureWording,
  ) {}

  /**
   * `error`, a failure of `action`, as a BackendError. One that already is (e.g. from connecting)
   * keeps its `retriable` and cause and gets the action appended.
   */
  wrap(action: string, error: unknown): BackendError {
    if (error instanceof BackendError) {
      return new BackendError(`${error.message}; ${action}`, this.backend, this.location, {cause: error.cause ?? error, retriable: error.retriable})
    }
    return new BackendError(this.wording.message(action, error), this.backend, this.location, {cause: error, retriable: this.wording.isTransient(error)})
  }

  /** Whether retrying may help: a BackendError says so itself; anything else is classified. */
  isRetriable(error: unknown): boolean {
    return error instanceof BackendError ? error.retriable : this.wording.isTransient(error)
  }

  /** Runs `run`; a failure rejects as {@link wrap}(action, failure). */
  async request<T>(action: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (error) {
      throw this.wrap(action, error)
    }
  }
}
