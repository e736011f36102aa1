import {type ClickHouseClient, ClickHouseError, ClickHouseLogLevel, createClient} from '@clickhouse/client'
import {quoteSqlIdentifier} from '../identifiers.js'
import {
  type AddReceipt,
  BackendError,
  type CountBackend,
  DEFAULT_RETRY_POLICY,
  type DeviceEvent,
  errorReason,
  type RetryPolicy,
  retryWithBackoff,
  urlWithoutCredentials,
} from './backend.js'
import type {BackendOptions} from './registry.js'

export const DEFAULT_BATCH_SIZE = 10_000
export const DEFAULT_FLUSH_INTERVAL_MS = 30_000
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000
export const DEFAULT_TABLE = 'events'
export const READ_EVENTS_LIMIT = 10_000

/**
 * How the event time is stored.
 * - `datetime64`: `timestamp DateTime64(3, 'UTC')` — servers from 20.1 on.
 * - `epoch-ms`: `timestamp_ms Int64` (epoch milliseconds, the exact value) plus
 *   `timestamp DateTime('UTC') MATERIALIZED` from it (whole seconds, for partitioning and readable
 *   queries) — older servers such as 18.16, which have no DateTime64.
 * An existing table keeps the layout it was created with, whatever the server version now.
 */
export type TimestampLayout = 'datetime64' | 'epoch-ms'

/** JSONEachRow row for one event. */
export type EventRow =
  | {timestamp: string; device_ip: string; error_code: number}
  | {timestamp_ms: number; device_ip: string; error_code: number}

/**
 * Server error codes that retrying cannot fix: missing column/table/database, read-only or unknown
 * user, wrong password, access denied. Anything else (network, timeouts, too many parts, memory)
 * is retried.
 */
const PERMANENT_ERROR_CODES = new Set([16, 60, 81, 164, 192, 193, 194, 497, 516])

/** `18.16.1` → true if the server has DateTime64 (added in 20.1). */
export function supportsDateTime64(version: string): boolean {
  const [major, minor] = version.split('.').map((part) => Number.parseInt(part, 10))
  if (!Number.isFinite(major)) return false
  return major > 20 || (major === 20 && (minor ?? 0) >= 1)
}

/** The CREATE TABLE statement for `table` (already validated and quoted) in the given layout. */
export function createTableSql(qualifiedTable: string, layout: TimestampLayout): string {
  const timestampColumns =
    layout === 'datetime64'
      ? `timestamp DateTime64(3, 'UTC')`
      : `timestamp_ms Int64,\n  timestamp DateTime('UTC') MATERIALIZED toDateTime(intDiv(timestamp_ms, 1000), 'UTC')`
  return [
    `CREATE TABLE IF NOT EXISTS ${qualifiedTable} (`,
    `  ${timestampColumns},`,
    `  device_ip String,`,
    `  error_code Int8`,
    `) ENGINE = MergeTree`,
    `PARTITION BY toYYYYMM(timestamp)`,
    `ORDER BY device_ip`,
  ].join('\n')
}

/** Epoch milliseconds → `2021-12-03 16:15:30.123`, the text form DateTime64(3, 'UTC') reads. */
export function formatDateTime64(timestampMs: number): string {
  return new Date(timestampMs).toISOString().slice(0, 23).replace('T', ' ')
}

export function toEventRow(event: DeviceEvent, layout: TimestampLayout): EventRow {
  return layout === 'datetime64'
    ? {timestamp: formatDateTime64(event.timestampMs), device_ip: event.deviceIp, error_code: event.errorCode}
    : {timestamp_ms: event.timestampMs, device_ip: event.deviceIp, error_code: event.errorCode}
}

interface Batch {
  readonly rows: EventRow[]
  /** Set when the flush interval passed or `flush()` asked for it: insert as soon as possible. */
  due: boolean
  timer?: NodeJS.Timeout
  /** Resolves when the batch was inserted; rejects only when retries gave up. */
  readonly written: Promise<void>
  /** What `AddReceipt.durable` hands out: resolves with `written`, never rejects. */
  readonly durable: Promise<void>
  resolve(): void
  reject(error: BackendError): void
}

function newBatch(): Batch {
  let resolve!: () => void
  let reject!: (error: BackendError) => void
  const written = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  // Marks the rejection handled: a batch nobody flushes must not crash the process when it fails.
  written.catch(() => {})
  // A receipt never rejects (see AddReceipt): after a give-up the events are not durable, ever;
  // the caller learns of it from add()/flush() rejecting.
  const durable = written.catch(() => new Promise<void>(() => {}))
  return {rows: [], due: false, written, durable, resolve, reject}
}

/**
 * Exact count over an events table in ClickHouse (`uniqExact(device_ip)`), keeping every event.
 *
 * Events are buffered and inserted as one JSONEachRow batch when the buffer holds `batchSize` rows,
 * or `flushIntervalMs` after the buffer's first row arrived, whichever comes first — also when no
 * further events arrive. One insert is in flight at a time and batches are inserted in order; while
 * one is in flight the next buffer fills, and once that is full too `add()` waits (back-pressure:
 * at most 2 × batchSize rows in memory). A failed insert keeps its rows and is retried with capped
 * exponential backoff, each failure reported through `onError`.
 *
 * Retries are at-least-once: an insert that timed out on the client may still have been applied, so
 * a retry can store some events twice. Duplicates do not change the distinct count; `rowCount()`
 * may then exceed the number of events consumed.
 */
export class ClickHouseBackend implements CountBackend {
  readonly name = 'clickhouse'
  readonly exact = true
  readonly location: string
  readonly database: string
  readonly table: string
  readonly batchSize: number
  readonly flushIntervalMs: number
  private readonly client: ClickHouseClient
  private readonly qualifiedTable: string
  private readonly retryPolicy: RetryPolicy
  private readonly onError?: (error: BackendError) => void
  private connecting?: Promise<void>
  private layout?: TimestampLayout
  private insertSettings: Record<string, string> = {}
  private filling = newBatch()
  private writing?: {batch: Batch; done: Promise<void>}
  private failed?: BackendError
  private closed = false

  constructor(options: BackendOptions) {
    const url = parseHttpUrl(options.clickhouseUrl)
    this.location = urlWithoutCredentials(options.clickhouseUrl)
    if (!url) {
      throw new BackendError(`invalid ClickHouse URL "${this.location}": use http(s)://host:port`, this.name, this.location)
    }
    const database = quoteSqlIdentifier(options.clickhouseDatabase, 'ClickHouse database name')
    const table = quoteSqlIdentifier(options.clickhouseTable ?? DEFAULT_TABLE, 'ClickHouse table name')
    this.database = options.clickhouseDatabase
    this.table = options.clickhouseTable ?? DEFAULT_TABLE
    this.qualifiedTable = `${database}.${table}`
    this.batchSize = positiveInteger(options.batchSize ?? DEFAULT_BATCH_SIZE, 'batch size')
    this.flushIntervalMs = positiveInteger(options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS, 'flush interval')
    this.retryPolicy = {...DEFAULT_RETRY_POLICY, maxRetryTimeMs: options.maxRetryTimeMs}
    this.onError = options.onError
    // Credentials in the URL win over the separate user/password options.
    const username = url.username ? decodeURIComponent(url.username) : options.clickhouseUser
    const password = url.password ? decodeURIComponent(url.password) : options.clickhousePassword
    url.username = ''
    url.password = ''
    this.client = createClient({
      url: url.toString(),
      username,
      password,
      request_timeout: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      // Errors reach the caller as BackendErrors; the client's own logger would print stack traces.
      log: {level: ClickHouseLogLevel.OFF},
    })
  }

  /** The timestamp layout of the table; known after `connect()`. */
  get timestampLayout(): TimestampLayout | undefined {
    return this.layout
  }

  /** Rows waiting in memory (not yet in an insert). */
  get bufferedRows(): number {
    return this.filling.rows.length
  }

  /** Detects the server version, creates database and table if missing and reads the table's layout. */
  async connect(): Promise<void> {
    this.connecting ??= this.prepare().catch((error: unknown) => {
      this.connecting = undefined
      throw error
    })
    return this.connecting
  }

  async add(events: readonly DeviceEvent[]): Promise<AddReceipt> {
    this.assertUsable()
    await this.connect()
    const layout = this.layout as TimestampLayout
    const batches: Batch[] = []
    let next = 0
    while (next < events.length) {
      this.assertUsable()
      const batch = this.filling
      if (batch.rows.length >= this.batchSize) {
        // Back-pressure: both the in-flight batch and this one are full.
        this.pump()
        await this.writing?.done
        continue
      }
      if (batch.rows.length === 0) this.startTimer(batch)
      const end = Math.min(events.length, next + this.batchSize - batch.rows.length)
      for (let index = next; index < end; index++) batch.rows.push(toEventRow(events[index], layout))
      next = end
      if (batches.at(-1) !== batch) batches.push(batch)
      if (batch.rows.length >= this.batchSize) this.pump()
    }
    if (batches.length === 0) return {durable: Promise.resolve()}
    const durable = batches.length === 1 ? batches[0].durable : Promise.all(batches.map((batch) => batch.durable)).then(() => {})
    return {durable}
  }

  /** Inserts everything buffered now; resolves when it is in ClickHouse. */
  async flush(): Promise<void> {
    if (this.failed) throw this.failed
    const target = this.filling.rows.length > 0 ? this.filling : this.writing?.batch
    if (!target) return
    target.due = true
    this.pump()
    await target.written
  }

  async count(): Promise<number> {
    const [row] = await this.select<{count: string | number}>('counting distinct device IPs', `SELECT uniqExact(device_ip) AS count FROM ${this.qualifiedTable}`)
    return Number(row.count)
  }

  /** Number of rows in the table (events stored, including duplicates from retried inserts). */
  async rowCount(): Promise<number> {
    const [row] = await this.select<{count: string | number}>('counting rows', `SELECT count() AS count FROM ${this.qualifiedTable}`)
    return Number(row.count)
  }

  /** Reads stored events back, oldest first, at most READ_EVENTS_LIMIT (for checks and tools). */
  async readEvents(): Promise<DeviceEvent[]> {
    await this.connect()
    const timestampMs = this.layout === 'datetime64' ? 'toUnixTimestamp64Milli(timestamp)' : 'timestamp_ms'
    const rows = await this.select<{timestamp_ms: string | number; device_ip: string; error_code: number}>(
      'reading events',
      `SELECT ${timestampMs} AS timestamp_ms, device_ip, error_code FROM ${this.qualifiedTable} ORDER BY timestamp_ms, device_ip LIMIT ${READ_EVENTS_LIMIT}`,
    )
    return rows.map((row) => ({timestampMs: Number(row.timestamp_ms), deviceIp: row.device_ip, errorCode: Number(row.error_code)}))
  }

  /** Flushes (retrying as configured), stops the timer and closes the client. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    try {
      await this.flush()
    } finally {
      clearTimeout(this.filling.timer)
      await this.client.close()
    }
  }

  private async prepare(): Promise<void> {
    const [{version}] = await this.select<{version: string}>('reading the server version', 'SELECT version() AS version')
    const serverHasDateTime64 = supportsDateTime64(version)
    // Newer servers refuse an insert touching more than 100 partitions (months) by default;
    // a batch of old events may span more, and a refused batch would be retried for ever.
    if (serverHasDateTime64) this.insertSettings = {max_partitions_per_insert_block: '0'}
    await this.command('creating the database', `CREATE DATABASE IF NOT EXISTS ${quoteSqlIdentifier(this.database, 'ClickHouse database name')}`)
    await this.command('creating the table', createTableSql(this.qualifiedTable, serverHasDateTime64 ? 'datetime64' : 'epoch-ms'))
    this.layout = await this.detectLayout()
  }

  private async detectLayout(): Promise<TimestampLayout> {
    const columns = await this.select<{name: string; type: string}>('reading the table schema', `DESCRIBE TABLE ${this.qualifiedTable}`)
    const types = new Map(columns.map((column) => [column.name, column.type]))
    const hasEventColumns = types.get('device_ip') === 'String' && types.get('error_code') === 'Int8'
    if (hasEventColumns && types.get('timestamp_ms') === 'Int64') return 'epoch-ms'
    if (hasEventColumns && types.get('timestamp')?.startsWith('DateTime64(3')) return 'datetime64'
    const found = columns.map((column) => `${column.name} ${column.type}`).join(', ')
    throw new BackendError(
      `ClickHouse at ${this.location}: table ${this.database}.${this.table} exists with other columns (${found}); ` +
        'expected timestamp DateTime64(3) or timestamp_ms Int64, device_ip String, error_code Int8',
      this.name,
      this.location,
    )
  }

  private startTimer(batch: Batch): void {
    batch.timer = setTimeout(() => {
      batch.due = true
      this.pump()
    }, this.flushIntervalMs)
    // The timer alone never keeps a process alive; close() flushes what is left.
    batch.timer.unref()
  }

  /** Starts inserting the filling batch if it is full or due and no insert is in flight. */
  private pump(): void {
    if (this.writing || this.failed) return
    const batch = this.filling
    if (batch.rows.length === 0 || (!batch.due && batch.rows.length < this.batchSize)) return
    clearTimeout(batch.timer)
    this.filling = newBatch()
    const done = this.write(batch).then(() => {
      this.writing = undefined
      this.pump()
    })
    this.writing = {batch, done}
  }

  /** Inserts one batch, retrying until it succeeds or the retry policy gives up. Never rejects. */
  private async write(batch: Batch): Promise<void> {
    try {
      await retryWithBackoff(() => this.insert(batch.rows), {
        policy: this.retryPolicy,
        isRetryable: (error) => !PERMANENT_ERROR_CODES.has(serverErrorCode(error) ?? -1),
        onFailure: (error, retryInMs) =>
          this.onError?.(this.failure(`inserting ${batch.rows.length} rows (retrying in ${retryInMs} ms)`, error)),
      })
      batch.resolve()
    } catch (error) {
      this.failed = this.failure(`inserting ${batch.rows.length} rows (gave up)`, error)
      batch.reject(this.failed)
      clearTimeout(this.filling.timer)
      this.filling.reject(this.failed)
    }
  }

  private async insert(rows: EventRow[]): Promise<void> {
    const columns: [string, ...string[]] =
      this.layout === 'datetime64' ? ['timestamp', 'device_ip', 'error_code'] : ['timestamp_ms', 'device_ip', 'error_code']
    await this.client.insert({table: this.qualifiedTable, values: rows, format: 'JSONEachRow', columns, clickhouse_settings: this.insertSettings})
  }

  private async select<T>(action: string, query: string): Promise<T[]> {
    try {
      const result = await this.client.query({query, format: 'JSONEachRow'})
      return await result.json<T>()
    } catch (error) {
      throw this.failure(action, error)
    }
  }

  private async command(action: string, query: string): Promise<void> {
    try {
      await this.client.command({query})
    } catch (error) {
      throw this.failure(action, error)
    }
  }

  private assertUsable(): void {
    if (this.failed) throw this.failed
    if (this.closed) throw new BackendError(`ClickHouse backend at ${this.location} is closed`, this.name, this.location)
  }

  private failure(action: string, error: unknown): BackendError {
    if (error instanceof BackendError) return error
    const message =
      serverErrorCode(error) === undefined
        ? `cannot reach ClickHouse at ${this.location} (${action}): ${errorReason(error)}`
        : `ClickHouse at ${this.location}: ${action} failed: ${errorReason(error)}`
    return new BackendError(message, this.name, this.location, {cause: error})
  }
}

/** The server's error code if the server answered with an exception; undefined for network errors. */
function serverErrorCode(error: unknown): number | undefined {
  if (error instanceof ClickHouseError) return Number(error.code)
  // 18.16 formats exceptions as `Code: 60, e.displayText() = ...`, which the client leaves unparsed.
  const match = error instanceof Error ? /^Code: (\d+)/.exec(error.message) : null
  return match ? Number(match[1]) : undefined
}

function parseHttpUrl(text: string): URL | undefined {
  try {
    const url = new URL(text)
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined
  } catch {
    return undefined
  }
}

function positiveInteger(value: number, what: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${what} must be a positive integer, got ${value}`)
  return value
}
