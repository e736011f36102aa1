import type {BoundedCountQuery, BucketSize, CountQuery, SeriesPoint} from '../../query/count-query.js'
import {BackendError, type DeviceEvent, type FreshnessBackend, type RangeCountBackend} from '../backend.js'
import {BufferedBackend} from '../buffered-backend.js'
import {parseUrlWithProtocol, urlWithoutCredentials} from '../connection-url.js'
import {DEFAULT_BATCH_SIZE, DEFAULT_FLUSH_INTERVAL_MS} from '../options.js'
import {DEFAULT_RETRY_POLICY} from '../retry.js'
import {ClickHouseConnection} from './connection.js'
import {EventsTable, tableNames} from './events-table.js'
import type {ClickHouseOptions, ClusterDdlMode} from './options.js'
import {ClickHouseQueries} from './queries.js'
import type {TimestampLayout} from './schema.js'
import type {TsvBatch} from './tsv-batch.js'
import {ClickHouseWriter} from './writer.js'

export {BACKFILL_TIMEOUT_MS, DEFAULT_TABLE, supportsDateTime64} from './events-table.js'
export {READ_EVENTS_LIMIT} from './queries.js'

/**
 * Exact count over an events table in ClickHouse (`uniqExact(device_ip)`), keeping every event.
 *
 * Two rollups filled by materialized views on every insert (see {@link createSchemaSql}) keep counts
 * fast as the table grows: the all-time count reads the distinct devices, range and error-code counts
 * read distinct (hour, error code, device) rows of the hours they need, plus the raw events of
 * partial hours at the ends of a range, so every count stays exact ({@link ClickHouseQueries}).
 * Rollups added to an existing events table are filled from it once, by the first `connect()`
 * ({@link EventsTable}).
 *
 * Events are buffered (see {@link BatchWriter}) and inserted as one TabSeparated batch
 * ({@link ClickHouseWriter}) when the buffer holds `batchSize` rows, or `flushIntervalMs` after the
 * buffer's first row arrived, whichever comes first — also when no further events arrive. One insert
 * is in flight at a time and batches are inserted in order; while one is in flight the next buffer
 * fills, and once that is full too `add()` waits (back-pressure: at most 2 × batchSize rows in
 * memory). A failed insert keeps its rows and is retried with capped exponential backoff, each
 * failure reported as a `write-failed` event; when the retries give up, the receipts of its events reject.
 *
 * Retries are at-least-once: an insert that timed out on the client may still have been applied, so
 * a retry can store some events twice. Duplicates do not change the distinct count; `rowCount()`
 * may then exceed the number of events consumed.
 *
 * Connection, TLS and credentials: {@link ClickHouseConnection}. The lifecycle is the one every
 * backend follows ({@link CountBackend}).
 */
export class ClickHouseBackend extends BufferedBackend<TsvBatch> implements RangeCountBackend, FreshnessBackend {
  readonly name = 'clickhouse'
  readonly exact = true
  readonly timeResolution = 'exact'
  readonly freshnessMeasure = 'newest-event'
  readonly location: string
  readonly database: string
  readonly table: string
  readonly batchSize: number
  readonly flushIntervalMs: number
  /** Cluster name when the tables are local tables on every node plus Distributed tables. */
  readonly cluster?: string
  readonly clusterDdl: ClusterDdlMode
  private readonly connection: ClickHouseConnection
  private readonly events: EventsTable
  private readonly queries: ClickHouseQueries
  private connecting?: Promise<void>

  constructor(options: ClickHouseOptions) {
    const url = parseUrlWithProtocol(options.clickhouseUrl, ['http:', 'https:'])
    const location = urlWithoutCredentials(options.clickhouseUrl)
    if (!url) throw new BackendError(`invalid ClickHouse URL "${location}": use http(s)://host:port`, 'clickhouse', location)
    const names = tableNames(options)
    const batchSize = positiveInteger(options.batchSize ?? DEFAULT_BATCH_SIZE, 'batch size')
    const flushIntervalMs = positiveInteger(options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS, 'flush interval')
    const connection = new ClickHouseConnection(url, location, options)
    const events = new EventsTable(connection, names)
    super('ClickHouse', new ClickHouseWriter(connection, events), {
      batchSize,
      flushIntervalMs,
      retryPolicy: {...DEFAULT_RETRY_POLICY, maxRetryTimeMs: options.maxRetryTimeMs},
    })
    this.location = location
    this.database = names.database
    this.table = names.table
    if (names.cluster !== undefined) this.cluster = names.cluster
    this.clusterDdl = names.clusterDdl
    this.batchSize = batchSize
    this.flushIntervalMs = flushIntervalMs
    this.connection = connection
    this.events = events
    this.queries = new ClickHouseQueries(connection, events, () => this.connect())
  }

  /** Whether counts read the rollups (known after `connect()`; false before). */
  get usesRollups(): boolean {
    return this.events.rollupsReady
  }

  /** The timestamp layout of the table; known after `connect()`. */
  get timestampLayout(): TimestampLayout | undefined {
    return this.events.layout
  }

  /**
   * Whether the table keeps each event's Kafka coordinates and reads each event once through the
   * `<table>_deduplicated` view (known after `connect()`). False for a table without them (the
   * unkeyed layout), where every insert appends.
   */
  get deduplicates(): boolean {
    return this.events.deduplicates
  }

  /** Rows waiting in memory (not yet in an insert). */
  get bufferedRows(): number {
    return this.bufferedEvents
  }

  /** Detects the server version, creates database and table if missing and reads the table's layout; once. */
  async connect(): Promise<void> {
    this.assertOpen()
    this.connecting ??= this.events.prepare().catch((error: unknown) => {
      this.connecting = undefined
      throw error
    })
    return this.connecting
  }

  async count(): Promise<number> {
    return this.queries.count()
  }

  async countUnique(query: CountQuery): Promise<number> {
    return this.queries.countUnique(query)
  }

  async countSeries(query: BoundedCountQuery, by: BucketSize): Promise<SeriesPoint[]> {
    return this.queries.countSeries(query, by)
  }

  /** Epoch ms of the newest event stored (its timestamp); undefined while none is. */
  async freshness(): Promise<number | undefined> {
    return this.queries.newestEventMs()
  }

  /** Rows in the events table as stored, copies from replays included until background merges drop them. */
  async rowCount(): Promise<number> {
    return this.queries.rowCount()
  }

  /** Events stored, each once: rows of the deduplicated view (of the table on the unkeyed layout). */
  async eventCount(): Promise<number> {
    return this.queries.eventCount()
  }

  /** Reads stored events back, each once, oldest first, at most READ_EVENTS_LIMIT (for checks and tools). */
  async readEvents(): Promise<DeviceEvent[]> {
    return this.queries.readEvents()
  }

  /** Rows are encoded in the table's layout, so the first `add()` connects. */
  protected connectForWrites(): Promise<void> {
    return this.connect()
  }

  protected release(closed: BackendError): Promise<void> {
    return this.connection.close(closed)
  }
}

function positiveInteger(value: number, what: string): number {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${what} must be a positive integer, got ${value}`)
  return value
}
