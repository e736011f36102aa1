import {errorReason} from '../../util/errors.js'
import {BackendError} from '../backend.js'
import {quoteSqlIdentifier, validateSqlIdentifier} from '../identifiers.js'
import {type ClickHouseConnection, serverErrorCode} from './connection.js'
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
import {LocalSequence, type TableShape} from './tsv-batch.js'

export const DEFAULT_TABLE = 'events'
/** Filling the rollups from an existing events table (once, after upgrading) may take this long. */
export const BACKFILL_TIMEOUT_MS = 3_600_000
/** READONLY, ACCESS_DENIED: the user may not create the database or tables (but may read them). */
const CREATE_REFUSED_CODES = new Set([164, 497])

/** `18.16.1` → true if the server has DateTime64 (added in 20.1). */
export function supportsDateTime64(version: string): boolean {
  const [major, minor] = version.split('.').map((part) => Number.parseInt(part, 10))
  if (!Number.isFinite(major)) return false
  return major > 20 || (major === 20 && (minor ?? 0) >= 1)
}

/** Qualified, quoted names the count queries read. */
export interface QueryTables {
  events: string
  devices: string
  hourly: string
}

/** Where the events go: database, table and cluster names, validated. */
export interface TableNames {
  database: string
  table: string
  /** Cluster name when the tables are local tables on every node plus Distributed tables. */
  cluster?: string
  clusterDdl: ClusterDdlMode
}

/** The names of the options, validated (an IdentifierError names the bad one). */
export function tableNames(options: ClickHouseOptions): TableNames {
  const table = options.clickhouseTable ?? DEFAULT_TABLE
  validateSqlIdentifier(options.clickhouseDatabase, 'ClickHouse database name')
  validateSqlIdentifier(table, 'ClickHouse table name')
  const cluster = options.clickhouseCluster === undefined ? undefined : validateSqlIdentifier(options.clickhouseCluster, 'ClickHouse cluster name')
  return {database: options.clickhouseDatabase, table, cluster, clusterDdl: options.clickhouseClusterDdl ?? 'on-cluster'}
}

/**
 * The schema side of the clickhouse backend: the events table and its rollups as {@link prepare}
 * found or made them (see {@link createSchemaSql}). Rollups added to an existing events table are
 * filled from it once; an existing table keeps its timestamp layout. A user that may read but not
 * create gets what exists, as it is.
 */
export class EventsTable {
  /** The events table, qualified and quoted. */
  readonly qualified: string
  readonly queryTables: QueryTables
  /** Whether counts may read the rollups (known once prepared). */
  rollupsReady = false
  /** Layout and key of the rows (known once prepared). */
  shape?: TableShape
  /** Settings of every insert, by server version and cluster. */
  insertSettings: Record<string, string> = {}
  private readonly localSequence = new LocalSequence()

  constructor(
    private readonly connection: ClickHouseConnection,
    readonly names: TableNames,
  ) {
    const tables = schemaTables(names.table, names.cluster !== undefined)
    this.qualified = this.qualify(names.table)
    this.queryTables = {events: this.qualified, devices: this.qualify(tables.devices), hourly: this.qualify(tables.hourly)}
  }

  get layout(): TimestampLayout | undefined {
    return this.shape?.layout
  }

  /** Whether rows carry their Kafka coordinates, read once through `<table>_deduplicated` (false on the earlier layout). */
  get deduplicates(): boolean {
    return this.shape?.key.keyed ?? false
  }

  /** The relation holding each event once. */
  eventsOnce(): string {
    return this.deduplicates ? this.qualify(schemaTables(this.names.table, this.names.cluster !== undefined).deduplicated) : this.qualified
  }

  /** The columns of an insert, in the order of the rows' fields. */
  insertColumns(): [string, ...string[]] {
    return [this.layout === 'datetime64' ? 'timestamp' : 'timestamp_ms', 'device_ip', 'error_code', ...(this.deduplicates ? COORDINATE_COLUMNS : [])]
  }

  /** Detects the server version, creates database, tables and rollups if missing and reads the table's layout. */
  async prepare(): Promise<void> {
    const {database, table, cluster, clusterDdl} = this.names
    const [{version}] = await this.connection.select<{version: string}>('reading the server version', 'SELECT version() AS version')
    const serverHasDateTime64 = supportsDateTime64(version)
    // Newer servers refuse an insert touching more than 100 partitions (months) by default;
    // a batch of old events may span more, and a refused batch would be retried for ever.
    if (serverHasDateTime64) this.insertSettings = {max_partitions_per_insert_block: '0'}
    // In a cluster an insert returns once every shard has its rows, so a receipt means durable there.
    if (cluster !== undefined) this.insertSettings = {...this.insertSettings, insert_distributed_sync: '1'}
    const serverLayout: TimestampLayout = serverHasDateTime64 ? 'datetime64' : 'epoch-ms'
    const schema = (layout: TimestampLayout) => createSchemaSql({database, table, layout, cluster, clusterDdl})
    const [createDatabase, createEvents] = schema(serverLayout)
    try {
      await this.connection.command('creating the database', createDatabase)
    } catch (error) {
      if (CREATE_REFUSED_CODES.has(serverErrorCode((error as BackendError).cause) ?? -1)) return this.prepareWithoutCreating(error as BackendError)
      if (cluster === undefined || clusterDdl !== 'on-cluster') throw error
      throw new BackendError(
        `${(error as Error).message}; ON CLUSTER DDL needs distributed DDL (ZooKeeper or ClickHouse Keeper) on the cluster: ` +
          'without it, create the tables on every node with --clickhouse-cluster-ddl local',
        'clickhouse',
        this.connection.location,
        {cause: (error as Error).cause ?? error},
      )
    }
    await this.connection.command('creating the table', createEvents)
    if (cluster !== undefined) {
      // The Distributed events table is among these, so the shape is read after them.
      for (const statement of schema(serverLayout).slice(2)) await this.connection.command('creating the cluster tables', statement)
      this.shape = await this.detectShape()
      await this.createDeduplicatedView()
      // Cluster rollups are created together with the tables; see "Scaling out" for adding them to existing data.
      this.rollupsReady = true
      return
    }
    // An existing table keeps its layout: the rollups are defined on the one it has.
    this.shape = await this.detectShape()
    await this.createDeduplicatedView()
    for (const statement of schema(this.shape.layout).slice(2)) await this.connection.command('creating the rollups', statement)
    this.rollupsReady = await this.ensureRollupsFilled(this.shape.layout)
  }

  private async createDeduplicatedView(): Promise<void> {
    if (!this.deduplicates) return
    const {cluster, clusterDdl} = this.names
    const onCluster = cluster !== undefined && clusterDdl === 'on-cluster' ? quoteSqlIdentifier(cluster, 'ClickHouse cluster name') : undefined
    const sql = createDeduplicatedViewSql(this.eventsOnce(), this.qualified, this.layout as TimestampLayout, onCluster)
    await this.connection.command('creating the deduplicated view', sql)
  }

  /**
   * For a user that may read but not create (a `readonly` profile, no CREATE grant): what exists is
   * used as it is — `ipc count` and `ipc serve` work with such a user. Inserts would be refused.
   */
  private async prepareWithoutCreating(refusal: BackendError): Promise<void> {
    const {database, table, cluster} = this.names
    const tables = schemaTables(table, cluster !== undefined)
    const exists = (name: string) => this.tableExists('checking the tables', name)
    if (!(await exists(tables.events))) {
      throw new BackendError(
        `ClickHouse at ${this.connection.location}: table ${database}.${table} does not exist, and user ` +
          `"${this.connection.username ?? 'default'}" may not create it ` +
          `(${errorReason(refusal.cause)}); run ipc consume once as a user that may, or check --clickhouse-database`,
        'clickhouse',
        this.connection.location,
        {cause: refusal.cause},
      )
    }
    this.shape = await this.detectShape()
    this.rollupsReady = await exists(cluster === undefined ? tables.rollupsReady : tables.devices)
  }

  /**
   * Fills the rollups from the events table once (they were added to an existing table), or rebuilds
   * an hourly rollup filled before it was kept to representable hours; true when complete.
   */
  private async ensureRollupsFilled(layout: TimestampLayout): Promise<boolean> {
    const {database, table} = this.names
    const tables = schemaTables(table, false)
    const exists = (name: string) => this.tableExists('checking the rollups', name)
    if (await exists(tables.rollupsReady)) return true
    const statements = (await exists(tables.rollupsReadyUnbounded))
      ? rebuildHourlyRollupSql(database, table, layout)
      : backfillRollupsSql(database, table, layout)
    await this.connection.runLong('filling the rollups from the existing events', statements, BACKFILL_TIMEOUT_MS)
    return true
  }

  /** Whether `table` exists in the backend's database. */
  private async tableExists(action: string, table: string): Promise<boolean> {
    const [row] = await this.connection.select<Record<string, string | number>>(action, `EXISTS TABLE ${this.qualify(table)}`)
    return Number(Object.values(row)[0]) === 1
  }

  /** `table` in the backend's database, quoted. */
  private qualify(table: string): string {
    return `${quoteSqlIdentifier(this.names.database, 'ClickHouse database name')}.${quoteSqlIdentifier(table, 'ClickHouse table name')}`
  }

  /** The table's timestamp layout and whether it has the Kafka coordinate columns. */
  private async detectShape(): Promise<TableShape> {
    const {database, table} = this.names
    const columns = await this.connection.select<{name: string; type: string}>('reading the table schema', `DESCRIBE TABLE ${this.qualified}`)
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
        `ClickHouse at ${this.connection.location}: table ${database}.${table} exists with other columns (${found}); ` +
          'expected timestamp DateTime64(3) or timestamp_ms Int64, device_ip String, error_code Int8',
        'clickhouse',
        this.connection.location,
      )
    }
    const keyed = COORDINATE_COLUMNS.every((name) => types.has(name))
    return {layout, key: keyed ? {keyed, local: this.localSequence} : {keyed}}
  }
}
