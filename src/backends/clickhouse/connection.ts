import {type ClickHouseClient, ClickHouseError, ClickHouseLogLevel, createClient} from '@clickhouse/client'
import {errorReason} from '../../util/errors.js'
import type {BackendError} from '../backend.js'
import {BackendFailures} from '../failures.js'
import {DEFAULT_REQUEST_TIMEOUT_MS} from '../options.js'
import {readCaFile} from '../tls.js'
import type {ClickHouseOptions} from './options.js'

/**
 * Server error codes that retrying cannot fix: missing column/table/database, read-only or unknown
 * user, wrong password, access denied. Anything else (network, timeouts, too many parts, memory)
 * is retried.
 */
const PERMANENT_ERROR_CODES = new Set([16, 60, 81, 164, 192, 193, 194, 497, 516])

/** The server's error code if the server answered with an exception; undefined for network errors. */
export function serverErrorCode(error: unknown): number | undefined {
  if (error instanceof ClickHouseError) return Number(error.code)
  // An embedded engine's adapter raises its own copy of the class, with the engine's error as cause.
  const engineCode = (error as {cause?: {clickhouseCode?: unknown}} | undefined)?.cause?.clickhouseCode
  if (typeof engineCode === 'number') return engineCode
  // 18.16 formats exceptions as `Code: 60, e.displayText() = ...`, which the client leaves unparsed.
  const match = error instanceof Error ? /^Code: (\d+)/.exec(error.message) : null
  return match ? Number(match[1]) : undefined
}

/** Connection problems and timeouts are transient; a query the server refuses for good (PERMANENT_ERROR_CODES) is not. */
export function isTransient(error: unknown): boolean {
  return !PERMANENT_ERROR_CODES.has(serverErrorCode(error) ?? -1)
}

/**
 * The HTTP(S) client of one ClickHouse server: credentials (those in the URL win over the
 * separate user and password options), the CA bundle for `https://`, the request timeout, or a
 * given connection (an embedded engine) instead of HTTP. Every request is independent, so a lost
 * server is simply reached again by the next one; failures reject as BackendErrors ({@link failures}).
 */
export class ClickHouseConnection {
  readonly failures: BackendFailures
  /** The user the requests authenticate as (undefined: the server's `default`). */
  readonly username?: string
  private readonly clientOptions: NonNullable<Parameters<typeof createClient>[0]>
  private readonly client: ClickHouseClient
  /** Set when the client talks through a given connection (an embedded engine), not over HTTP. */
  private readonly sharedConnection: boolean
  private closed?: BackendError

  /** `url`: the parsed `clickhouseUrl`; `location`: it without credentials. */
  constructor(
    url: URL,
    readonly location: string,
    options: ClickHouseOptions,
  ) {
    this.failures = new BackendFailures('clickhouse', location, {
      message: (action, error) =>
        serverErrorCode(error) === undefined
          ? `cannot reach ClickHouse at ${location} (${action}): ${errorReason(error)}`
          : `ClickHouse at ${location}: ${action} failed: ${errorReason(error)}`,
      isTransient,
    })
    const plain = new URL(url)
    plain.username = ''
    plain.password = ''
    this.username = url.username ? decodeURIComponent(url.username) : options.clickhouseUser
    this.clientOptions = {
      url: plain.toString(),
      username: this.username,
      password: url.password ? decodeURIComponent(url.password) : options.clickhousePassword,
      request_timeout: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      ...(options.clickhouseCaFile ? {tls: {ca_cert: readCaFile(options.clickhouseCaFile, 'ClickHouse', 'clickhouse', location)}} : {}),
      // Errors reach the caller as BackendErrors; the client's own logger would print stack traces.
      log: {level: ClickHouseLogLevel.OFF},
    }
    if (options.clickhouseConnection) this.clientOptions.connection = options.clickhouseConnection
    this.sharedConnection = options.clickhouseConnection !== undefined
    this.client = createClient(this.clientOptions)
  }

  /** The rows of a query, as JSONEachRow objects; `action` names it in a failure. */
  async select<T>(action: string, query: string): Promise<T[]> {
    return this.failures.request(action, async () => {
      this.assertOpen()
      const result = await this.client.query({query, format: 'JSONEachRow'})
      return result.json<T>()
    })
  }

  async command(action: string, query: string): Promise<void> {
    await this.failures.request(action, async () => {
      this.assertOpen()
      await this.client.command({query})
    })
  }

  /** One insert; rejects with the client's own error (the writer words and retries it). */
  async insert(params: Parameters<ClickHouseClient['insert']>[0]): Promise<void> {
    this.assertOpen()
    await this.client.insert(params)
  }

  /**
   * Runs `statements` in order on a client whose requests may take up to `timeoutMs` (filling the
   * rollups of a large table); an embedded engine's connection is shared and has no timeout.
   */
  async runLong(action: string, statements: readonly string[], timeoutMs: number): Promise<void> {
    this.assertOpen()
    const client = this.sharedConnection ? this.client : createClient({...this.clientOptions, request_timeout: timeoutMs})
    try {
      for (const statement of statements) await this.failures.request(action, () => client.command({query: statement}))
    } finally {
      if (client !== this.client) await client.close()
    }
  }

  /** Closes the client; later requests reject with `closed`. */
  async close(closed: BackendError): Promise<void> {
    this.closed = closed
    await this.client.close()
  }

  private assertOpen(): void {
    if (this.closed) throw this.closed
  }
}
