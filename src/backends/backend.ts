/** One valid, normalised network event, as every backend receives it. */
export interface DeviceEvent {
  /** Event time, epoch milliseconds UTC (from the parsed `timestamp` field). */
  timestampMs: number
  /** Normalised IP: IPv4 dotted decimal, IPv6 lower-case compressed. */
  deviceIp: string
  /** Integer in -128..127. */
  errorCode: number
}

/**
 * Returned by {@link CountBackend.add}. `durable` resolves once every event of that call has been
 * written durably by the backend (for buffering backends: after the flush that contains them).
 * It never rejects: a failed write is retried by the backend, and reported through `onError`.
 */
export interface AddReceipt {
  durable: Promise<void>
}

/**
 * The one interface every command uses to count. Implementations: redis (HyperLogLog, approximate),
 * clickhouse (batched inserts, exact), memory (exact, in-process).
 */
export interface CountBackend {
  /** Registry name: `redis`, `clickhouse`, `memory`. */
  readonly name: string
  /** Whether `count()` is exact (true) or an estimate (false). */
  readonly exact: boolean
  /** Human-readable location for messages, without credentials (e.g. `redis://127.0.0.1:6379`). */
  readonly location: string
  /** Connects and creates what is missing (keys need nothing; ClickHouse database/table). */
  connect(): Promise<void>
  /**
   * Accepts events. Resolves when they are accepted (buffered or written); applies back-pressure by
   * resolving later when the backend's buffer is full. The receipt tells when they are durable.
   */
  add(events: readonly DeviceEvent[]): Promise<AddReceipt>
  /** Writes everything buffered; resolves when it is durable. */
  flush(): Promise<void>
  /** Number of distinct device IPs stored. */
  count(): Promise<number>
  /** Flushes and releases connections and timers. */
  close(): Promise<void>
}

/** A backend could not be reached or refused an operation. `location` names where, never a password. */
export class BackendError extends Error {
  override name = 'BackendError'
  constructor(
    message: string,
    readonly backend: string,
    readonly location: string,
    options?: {cause?: unknown},
  ) {
    super(message, options)
  }
}
