import {Readable} from 'node:stream'
import {type ClickHouseClient, ClickHouseError, ClickHouseLogLevel, createClient} from '@clickhouse/client'
import {type BoundedCountQuery, type BucketSize, type CountQuery, denseSeries, type SeriesPoint, validateQuery} from '../../query/count-query.js'
import {quoteSqlIdentifier, validateSqlIdentifier} from '../identifiers.js'
import {errorReason} from '../../util/errors.js'
import {EventEmitter} from 'node:events'
import {
  type AddReceipt,
  BackendError,
  DEFAULT_RETRY_POLICY,
  type DeviceEvent,
  type RangeCountBackend,
  type RetryPolicy,
  urlWithoutCredentials,
  type BackendEvents,
  readCaFile,
  relayBackendEvents,
} from '../backend.js'
import {BatchWriter} from '../batch-writer.js'
import type {ClickHouseOptions, ClusterDdlMode} from './options.js'
import {
  backfillRollupsSql,
  COORDINATE_COLUMNS,
  createDeduplicatedViewSql,
  createSchemaSql,
  rebuildHourlyRollupSql,
  schemaTables,
  type TimestampLayout,
} from './schema.js'
import {countSeriesSql, countUniqueSql, type QueryTables} from './queries.js'
import {LocalSequence, type TableShape, TsvBatch} from './tsv-batch.js'

export const DEFAULT_BATCH_SIZE = 10_000
export const DEFAULT_FLUSH_INTERVAL_MS = 30_000
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000
export const DEFAULT_TABLE = 'events'
export const READ_EVENTS_LIMIT = 10_000
/** Filling the rollups from an existing events table (once, after upgrading) may take this long. */
export const BACKFILL_TIMEOUT_MS = 3_600_000

/**
 * Server error codes that retrying cannot fix: missing column/table/database, read-only or unknown
 * user, wrong password, access denied. Anything else (network, timeouts, too many parts, memory)
 * is retried.
 */
const PERMANENT_ERROR_CODES = new Set([16, 60, 81, 164, 192, 193, 194, 497, 516])
/** READONLY, ACCESS_DENIED: the user may not create the database or tables (but may read them). */
const CREATE_REFUSED_CODES = new Set([164, 497])

/** `18.16.1` → true if the server has DateTime64 (added in 20.1). */
export function supportsDateTime64(version: string): boolean {
  const [major, minor] = version.split('.').map((part) => Number.parseInt(part, 10))
  if (!Number.isFinite(major)) return false
  return major > 20 || (major === 20 && (minor ?? 0) >= 1)
}

/**
 * Exact count over an events table in ClickHouse (`uniqExact(device_ip)`), keeping every event.
 *
 * Two rollups filled by materialized views on every insert (see {@link createSchemaSql}) keep counts
 * fast as the table grows: the all-time count reads the distinct devices, range and error-code counts
 * read distinct (hour, error code, device) rows of the hours they need, plus the raw events of
 * partial hours at the ends of a range, so every count stays exact. Rollups added to an existing
 * events table are filled from it once, by the first `connect()`.
 *
 * Events are buffered (see {@link BatchWriter}) and inserted as one TabSeparated batch when the
 * buffer holds `batchSize` rows, or `flushIntervalMs` after the buffer's first row arrived, whichever
 * comes first — also when no further events arrive. One insert is in flight at a time and batches are
 * inserted in order; while one is in flight the next buffer fills, and once that is full too `add()`
 * waits (back-pressure: at most 2 × batchSize rows in memory). A failed insert keeps its rows and is
 * retried with capped exponential backoff, each failure reported as a `write-failed` event; when the retries
 * give up, the receipts of its events reject.
 *
 * Retries are at-least-once: an insert that timed out on the client may still have been applied, so
 * a retry can store some events twice. Duplicates do not change the distinct count; `rowCount()`
 * may then exceed the number of events consumed.
 */
export class ClickHouseBackend extends EventEmitter<BackendEvents> implements RangeCountBackend {
  readonly name = 'clickhouse'
  readonly exact = true
  readonly timeResolution = 'exact'
  readonly location: string
  readonly database: string
  readonly table: string
  readonly batchSize: number
  readonly flushIntervalMs: number
  /** Cluster name when the tables are local tables on every node plus Distributed tables. */
  readonly cluster?: string
  readonly clusterDdl: ClusterDdlMode
  private readonly client: ClickHouseClient
  private readonly clientOptions: Parameters<typeof createClient>[0]
  private readonly qualifiedTable: string
  private readonly queryTables: QueryTables
  private rollupsReady = false
  private readonly retryPolicy: RetryPolicy
  private connecting?: Promise<void>
  private shape?: TableShape
  private readonly localSequence = new LocalSequence()
  /** Set when the client talks through a given connection (an embedded engine), not over HTTP. */
  private readonly sharedConnection: boolean
  private insertSettings: Record<string, string> = {}
  private readonly writer: BatchWriter<DeviceEvent, TsvBatch>
  private closed?: Promise<void>

  constructor(options: ClickHouseOptions) {
    super()
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
    if (options.clickhouseCluster !== undefined) this.cluster = validateSqlIdentifier(options.clickhouseCluster, 'ClickHouse cluster name')
    this.clusterDdl = options.clickhouseClusterDdl ?? 'on-cluster'
    const tables = schemaTables(this.table, this.cluster !== undefined)
    this.queryTables = {
      events: this.qualifiedTable,
      devices: `${database}.${quoteSqlIdentifier(tables.devices, 'ClickHouse table name')}`,
      hourly: `${database}.${quoteSqlIdentifier(tables.hourly, 'ClickHouse table name')}`,
    }
    this.batchSize = positiveInteger(options.batchSize ?? DEFAULT_BATCH_SIZE, 'batch size')
    this.flushIntervalMs = positiveInteger(options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS, 'flush interval')
    this.retryPolicy = {...DEFAULT_RETRY_POLICY, maxRetryTimeMs: options.maxRetryTimeMs}
    // Credentials in the URL win over the separate user/password options.
    const username = url.username ? decodeURIComponent(url.username) : options.clickhouseUser
    const password = url.password ? decodeURIComponent(url.password) : options.clickhousePassword
    url.username = ''
    url.password = ''
    this.clientOptions = {
      url: url.toString(),
      username,
      password,
      request_timeout: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      ...(options.clickhouseCaFile ? {tls: {ca_cert: readCaFile(options.clickhouseCaFile, 'ClickHouse', this.name, this.location)}} : {}),
      // Errors reach the caller as BackendErrors; the client's own logger would print stack traces.
      log: {level: ClickHouseLogLevel.OFF},
    }
    if (options.clickhouseConnection) this.clientOptions.connection = options.clickhouseConnection
    this.sharedConnection = options.clickhouseConnection !== undefined
    this.client = createClient(this.clientOptions)
    this.writer = new BatchWriter({
      batchSize: this.batchSize,
      flushIntervalMs: this.flushIntervalMs,
      newBatch: () => new TsvBatch(() => this.shape as TableShape),
      write: (batch) => this.insert(batch.bytes),
      retryPolicy: this.retryPolicy,
      isRetryable: isTransient,
      describe: (batch) => `inserting ${batch.size} rows`,
      failure: (action, error) => this.failure(action, error),
      closedError: () => new BackendError(`ClickHouse backend at ${this.location} is closed`, this.name, this.location),
    })
    relayBackendEvents(this.writer, this)
  }

  /** Whether counts read the rollups (known after `connect()`; false before). */
  get usesRollups(): boolean {
    return this.rollupsReady
  }

  /** The timestamp layout of the table; known after `connect()`. */
  get timestampLayout(): TimestampLayout | undefined {
    return this.shape?.layout
  }

  private get layout(): TimestampLayout | undefined {
    return this.shape?.layout
  }

  /**
   * Whether the table keeps each event's Kafka coordinates and reads each event once through the
   * `<table>_deduplicated` view (known after `connect()`). False for a table of the earlier
   * layout, which keeps working as it did: every insert appends.
   */
  get deduplicates(): boolean {
    return this.shape?.key.keyed ?? false
  }

  /** Rows waiting in memory (not yet in an insert). */
  get bufferedRows(): number {
    return this.writer.buffered
  }

  get unwrittenEvents(): number {
    return this.writer.unwritten
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
    if (this.writer.failure) throw this.writer.failure
    await this.connect()
    return this.writer.add(events)
  }

  /** Inserts everything buffered now; resolves when it is in ClickHouse. */
  async flush(): Promise<void> {
    return this.writer.flush()
  }

  /** Distinct device IPs stored: from the devices rollup once connected, else from the events table. */
  async count(): Promise<number> {
    const sql = countUniqueSql(this.queryTables, this.layout ?? 'epoch-ms', {errorCodes: []}, this.rollupsReady)
    const [row] = await this.select<{count: string | number}>('counting distinct device IPs', sql)
    return Number(row.count)
  }

  async countUnique(query: CountQuery): Promise<number> {
    validateQuery(query)
    await this.connect()
    const sql = countUniqueSql(this.queryTables, this.layout as TimestampLayout, query, this.rollupsReady)
    const [row] = await this.select<{count: string | number}>('counting distinct device IPs', sql)
    return Number(row.count)
  }

  async countSeries(query: BoundedCountQuery, by: BucketSize): Promise<SeriesPoint[]> {
    validateQuery(query)
    await this.connect()
    const sql = countSeriesSql(this.queryTables, this.layout as TimestampLayout, query, by, this.rollupsReady)
    const rows = await this.select<{bucket: string | number; count: string | number}>(`counting distinct device IPs per ${by}`, sql)
    return denseSeries(query, by, new Map(rows.map((row) => [Number(row.bucket), Number(row.count)])))
  }

  /** Rows in the events table as stored, copies from replays included until background merges drop them. */
  async rowCount(): Promise<number> {
    const [row] = await this.select<{count: string | number}>('counting rows', `SELECT count() AS count FROM ${this.qualifiedTable}`)
    return Number(row.count)
  }

  /** Events stored, each once: rows of the deduplicated view (of the table on the unkeyed layout). */
  async eventCount(): Promise<number> {
    await this.connect()
    const [row] = await this.select<{count: string | number}>('counting events', `SELECT count() AS count FROM ${this.eventsOnce()}`)
    return Number(row.count)
  }

  /** Reads stored events back, each once, oldest first, at most READ_EVENTS_LIMIT (for checks and tools). */
  async readEvents(): Promise<DeviceEvent[]> {
    await this.connect()
    const timestampMs = this.layout === 'datetime64' ? 'toUnixTimestamp64Milli(timestamp)' : 'timestamp_ms'
    const rows = await this.select<{timestamp_ms: string | number; device_ip: string; error_code: number}>(
      'reading events',
      `SELECT ${timestampMs} AS timestamp_ms, device_ip, error_code FROM ${this.eventsOnce()} ORDER BY timestamp_ms, device_ip LIMIT ${READ_EVENTS_LIMIT}`,
    )
    return rows.map((row) => ({timestampMs: Number(row.timestamp_ms), deviceIp: row.device_ip, errorCode: Number(row.error_code)}))
  }

  /** The relation holding each event once. */
  private eventsOnce(): string {
    if (!this.deduplicates) return this.qualifiedTable
    return this.qualified(schemaTables(this.table, this.cluster !== undefined).deduplicated)
  }

  /** Flushes (retrying as configured), stops the timer and closes the client. */
  close(): Promise<void> {
    // A later call waits for the first instead of closing the client under its flush; a failure
    // is reported by the first call only.
    if (this.closed) return this.closed.catch(() => {})
    this.closed = (async () => {
      try {
        await this.writer.close({retry: true})
      } finally {
        await this.client.close()
      }
    })()
    return this.closed
  }

  private async prepare(): Promise<void> {
    const [{version}] = await this.select<{version: string}>('reading the server version', 'SELECT version() AS version')
    const serverHasDateTime64 = supportsDateTime64(version)
    // Newer servers refuse an insert touching more than 100 partitions (months) by default;
    // a batch of old events may span more, and a refused batch would be retried for ever.
    if (serverHasDateTime64) this.insertSettings = {max_partitions_per_insert_block: '0'}
    // In a cluster an insert returns once every shard has its rows, so a receipt means durable there.
    if (this.cluster !== undefined) this.insertSettings = {...this.insertSettings, insert_distributed_sync: '1'}
    const serverLayout: TimestampLayout = serverHasDateTime64 ? 'datetime64' : 'epoch-ms'
    const schema = (layout: TimestampLayout) =>
      createSchemaSql({database: this.database, table: this.table, layout, cluster: this.cluster, clusterDdl: this.clusterDdl})
    const [createDatabase, createEvents] = schema(serverLayout)
    try {
      await this.command('creating the database', createDatabase)
    } catch (error) {
      if (CREATE_REFUSED_CODES.has(serverErrorCode((error as BackendError).cause) ?? -1)) return this.prepareWithoutCreating(error as BackendError)
      if (this.cluster === undefined || this.clusterDdl !== 'on-cluster') throw error
      throw new BackendError(
        `${(error as Error).message}; ON CLUSTER DDL needs distributed DDL (ZooKeeper or ClickHouse Keeper) on the cluster: ` +
          'without it, create the tables on every node with --clickhouse-cluster-ddl local',
        this.name,
        this.location,
        {cause: (error as Error).cause ?? error},
      )
    }
    await this.command('creating the table', createEvents)
    if (this.cluster !== undefined) {
      // The Distributed events table is among these, so the shape is read after them.
      for (const statement of schema(serverLayout).slice(2)) await this.command('creating the cluster tables', statement)
      this.shape = await this.detectShape()
      await this.createDeduplicatedView()
      // Cluster rollups are created together with the tables; see "Scaling out" for adding them to existing data.
      this.rollupsReady = true
      return
    }
    // An existing table keeps its layout: the rollups are defined on the one it has.
    this.shape = await this.detectShape()
    await this.createDeduplicatedView()
    for (const statement of schema(this.shape.layout).slice(2)) await this.command('creating the rollups', statement)
    this.rollupsReady = await this.ensureRollupsFilled(this.shape.layout)
  }

  private async createDeduplicatedView(): Promise<void> {
    if (!this.deduplicates) return
    const onCluster = this.cluster !== undefined && this.clusterDdl === 'on-cluster' ? quoteSqlIdentifier(this.cluster, 'ClickHouse cluster name') : undefined
    const view = this.qualified(schemaTables(this.table, this.cluster !== undefined).deduplicated)
    await this.command('creating the deduplicated view', createDeduplicatedViewSql(view, this.qualifiedTable, this.layout as TimestampLayout, onCluster))
  }

  /**
   * For a user that may read but not create (a `readonly` profile, no CREATE grant): what exists is
   * used as it is — `ipc count` and `ipc serve` work with such a user. Inserts would be refused.
   */
  private async prepareWithoutCreating(refusal: BackendError): Promise<void> {
    const tables = schemaTables(this.table, this.cluster !== undefined)
    const exists = (table: string) => this.tableExists('checking the tables', table)
    if (!(await exists(tables.events))) {
      throw new BackendError(
        `ClickHouse at ${this.location}: table ${this.database}.${this.table} does not exist, and user ` +
          `"${this.clientOptions?.username ?? 'default'}" may not create it ` +
          `(${errorReason(refusal.cause)}); run ipc consume once as a user that may, or check --clickhouse-database`,
        this.name,
        this.location,
        {cause: refusal.cause},
      )
    }
    this.shape = await this.detectShape()
    this.rollupsReady = await exists(this.cluster === undefined ? tables.rollupsReady : tables.devices)
  }

  /**
   * Fills the rollups from the events table once (they were added to an existing table), or rebuilds
   * an hourly rollup filled before it was kept to representable hours; true when complete.
   */
  private async ensureRollupsFilled(layout: TimestampLayout): Promise<boolean> {
    const tables = schemaTables(this.table, false)
    const exists = (table: string) => this.tableExists('checking the rollups', table)
    if (await exists(tables.rollupsReady)) return true
    const statements = (await exists(tables.rollupsReadyUnbounded))
      ? rebuildHourlyRollupSql(this.database, this.table, layout)
      : backfillRollupsSql(this.database, this.table, layout)
    // An embedded engine's connection is shared by every client on it, and has no request timeout.
    const backfill = this.sharedConnection ? this.client : createClient({...this.clientOptions, request_timeout: BACKFILL_TIMEOUT_MS})
    try {
      for (const statement of statements) {
        try {
          await backfill.command({query: statement})
        } catch (error) {
          throw this.failure('filling the rollups from the existing events', error)
        }
      }
    } finally {
      if (backfill !== this.client) await backfill.close()
    }
    return true
  }

  /** Whether `table` exists in the backend's database. */
  private async tableExists(action: string, table: string): Promise<boolean> {
    const [row] = await this.select<Record<string, string | number>>(action, `EXISTS TABLE ${this.qualified(table)}`)
    return Number(Object.values(row)[0]) === 1
  }

  /** `table` in the backend's database, quoted. */
  private qualified(table: string): string {
    return `${quoteSqlIdentifier(this.database, 'ClickHouse database name')}.${quoteSqlIdentifier(table, 'ClickHouse table name')}`
  }

  /** The table's timestamp layout and whether it has the Kafka coordinate columns. */
  private async detectShape(): Promise<TableShape> {
    const columns = await this.select<{name: string; type: string}>('reading the table schema', `DESCRIBE TABLE ${this.qualifiedTable}`)
    const types = new Map(columns.map((column) => [column.name, column.type]))
    const hasEventColumns = types.get('device_ip') === 'String' && types.get('error_code') === 'Int8'
    const layout: TimestampLayout | undefined = !hasEventColumns
      ? undefined
      : types.get('timestamp_ms') === 'Int64'
        ? 'epoch-ms'
        : types.get('timestamp')?.startsWith('DateTime64(3')
          ? 'datetime64'
          : undefined
    if (layout === undefined) {
      const found = columns.map((column) => `${column.name} ${column.type}`).join(', ')
      throw new BackendError(
        `ClickHouse at ${this.location}: table ${this.database}.${this.table} exists with other columns (${found}); ` +
          'expected timestamp DateTime64(3) or timestamp_ms Int64, device_ip String, error_code Int8',
        this.name,
        this.location,
      )
    }
    const keyed = COORDINATE_COLUMNS.every((name) => types.has(name))
    return {layout, key: keyed ? {keyed, local: this.localSequence} : {keyed}}
  }

  private async insert(rows: Buffer): Promise<void> {
    const time = this.layout === 'datetime64' ? 'timestamp' : 'timestamp_ms'
    const columns: [string, ...string[]] = [time, 'device_ip', 'error_code', ...(this.deduplicates ? COORDINATE_COLUMNS : [])]
    await this.client.insert({
      table: this.qualifiedTable,
      values: Readable.from([rows], {objectMode: false}),
      format: 'TabSeparated',
      columns,
      clickhouse_settings: this.insertSettings,
    })
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

  private failure(action: string, error: unknown): BackendError {
    if (error instanceof BackendError) return error
    const message =
      serverErrorCode(error) === undefined
        ? `cannot reach ClickHouse at ${this.location} (${action}): ${errorReason(error)}`
        : `ClickHouse at ${this.location}: ${action} failed: ${errorReason(error)}`
    return new BackendError(message, this.name, this.location, {cause: error, retriable: isTransient(error)})
  }
}

/** Connection problems and timeouts are transient; a query the server refuses for good (PERMANENT_ERROR_CODES) is not. */
function isTransient(error: unknown): boolean {
  return !PERMANENT_ERROR_CODES.has(serverErrorCode(error) ?? -1)
}

/** The server's error code if the server answered with an exception; undefined for network errors. */
function serverErrorCode(error: unknown): number | undefined {
  if (error instanceof ClickHouseError) return Number(error.code)
  // An embedded engine's adapter raises its own copy of the class, with the engine's error as cause.
  const engineCode = (error as {cause?: {clickhouseCode?: unknown}} | undefined)?.cause?.clickhouseCode
  if (typeof engineCode === 'number') return engineCode
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
