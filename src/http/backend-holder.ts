import {BackendError, type CountBackend} from '../backends/backend.js'
import {withTimeout} from '../util/async.js'

/** The backend gave no answer within the time allowed for one call. */
export class BackendTimeoutError extends BackendError {
  override name = 'BackendTimeoutError'
  override readonly retriable = true
}

export interface BackendHolderOptions {
  /** Creates a fresh, unconnected backend: once at start, and again after a failure. */
  createBackend: () => Promise<CountBackend>
  /** Every backend call (connect, count, close) gives up after this long. */
  timeoutMs: number
}

/**
 * The one backend instance a server uses at a time: created on demand and connected once (callers
 * that arrive meanwhile wait for the same creation and connect), every call under a timeout, and
 * closed once a call on it fails, so the next caller gets a fresh instance whether or not the
 * backend's client would have reconnected by itself.
 */
export class BackendHolder {
  private backend: CountBackend | undefined
  private connected = false
  private connecting: Promise<CountBackend> | undefined
  private readonly closingInstances = new Set<Promise<void>>()
  private identity = {name: 'unknown', location: 'unknown', exact: false}

  constructor(private readonly options: BackendHolderOptions) {}

  /** The name of the last instance created. */
  get name(): string {
    return this.identity.name
  }

  /** The location of the last instance created, as it gives it (secrets are the caller's to remove). */
  get location(): string {
    return this.identity.location
  }

  get exact(): boolean {
    return this.identity.exact
  }

  /** Creates the first instance, so name and location are known; does not connect. */
  async init(): Promise<void> {
    this.backend = await this.create()
  }

  /** The current instance, connected. */
  connectedBackend(): Promise<CountBackend> {
    if (this.backend && this.connected) return Promise.resolve(this.backend)
    this.connecting ??= this.connect().finally(() => (this.connecting = undefined))
    return this.connecting
  }

  /** Runs one call on `backend` under the timeout; a synchronous throw counts as a failure too. */
  call<T>(backend: CountBackend, operation: () => Promise<T>, verb: string): Promise<T> {
    let pending: Promise<T>
    try {
      pending = operation()
    } catch (error) {
      return Promise.reject(error)
    }
    const {timeoutMs} = this.options
    return withTimeout(
      pending,
      timeoutMs,
      () => new BackendTimeoutError(`${backend.name} at ${backend.location} did not answer ${verb} within ${timeoutMs} ms`, backend.name, backend.location),
    )
  }

  /** Closes an instance a call failed on, unless it has been replaced already; the next caller creates a new one. */
  discard(backend: CountBackend): void {
    if (this.backend !== backend) return
    this.backend = undefined
    this.connected = false
    const closing = this.call(backend, () => backend.close(), 'close').then(
      () => {},
      () => {},
    )
    this.closingInstances.add(closing)
    void closing.finally(() => this.closingInstances.delete(closing))
  }

  /** Closes the current instance; resolves when every instance closing has closed or timed out. */
  async close(): Promise<void> {
    if (this.backend) this.discard(this.backend)
    await Promise.all(this.closingInstances)
  }

  private async create(): Promise<CountBackend> {
    const backend = await this.options.createBackend()
    this.identity = {name: backend.name, location: backend.location, exact: backend.exact}
    return backend
  }

  private async connect(): Promise<CountBackend> {
    this.backend ??= await this.create()
    const backend = this.backend
    try {
      await this.call(backend, () => backend.connect(), 'connect')
    } catch (error) {
      this.discard(backend)
      throw error
    }
    this.connected = true
    return backend
  }
}
