import {quoteSqlIdentifier, validateSqlIdentifier} from '../identifiers.js'
import type {ClusterDdlMode} from './options.js'

/**
 * How the event time is stored.
 * - `datetime64`: `timestamp DateTime64(3, 'UTC')` — servers from 20.1 on.
 * - `epoch-ms`: `timestamp_ms Int64` (epoch milliseconds, the exact value) plus
 *   `timestamp DateTime('UTC') MATERIALIZED` from it (whole seconds, for partitioning and readable
 *   queries) — older servers such as 18.16, which have no DateTime64.
 * An existing table keeps the layout it was created with, whatever the server version now.
 */
export type TimestampLayout = 'datetime64' | 'epoch-ms'

/**
 * Columns of each event's Kafka coordinates. They key the events table: a ReplacingMergeTree
 * ordered by them keeps one row per Kafka message, however often a replay (a restart before the
 * offsets were committed, an insert retried after a client-side timeout that the server had applied)
 * inserts it again. Events added without coordinates (the library API, not `ipc consume`) get
 * `kafka_topic` '' and a writer-unique negative partition and sequence, so none of them collapse.
 */
export const COORDINATE_COLUMNS = ['kafka_topic', 'kafka_partition', 'kafka_offset'] as const

/**
 * The CREATE TABLE statement for `table` (already validated and quoted) in the given layout;
 * `onCluster` (already quoted) adds `ON CLUSTER`. Rows with the same Kafka coordinates are
 * duplicates: background merges keep one, and reading with `FINAL` (the `<table>_deduplicated`
 * view) sees one at any time. Every copy of an event has the same time, so it sits in the same
 * monthly partition, within which ReplacingMergeTree collapses.
 */
export function createTableSql(qualifiedTable: string, layout: TimestampLayout, onCluster?: string): string {
  const timestampColumns =
    layout === 'datetime64'
      ? `timestamp DateTime64(3, 'UTC')`
      : `timestamp_ms Int64,\n  timestamp DateTime('UTC') MATERIALIZED toDateTime(intDiv(timestamp_ms, 1000), 'UTC')`
  return [
    `CREATE TABLE IF NOT EXISTS ${qualifiedTable}${onCluster ? ` ON CLUSTER ${onCluster}` : ''} (`,
    `  ${timestampColumns},`,
    `  device_ip String,`,
    `  error_code Int8,`,
    `  kafka_topic String,`,
    `  kafka_partition Int32,`,
    `  kafka_offset Int64`,
    `) ENGINE = ReplacingMergeTree`,
    `PARTITION BY toYYYYMM(timestamp)`,
    `ORDER BY (kafka_topic, kafka_partition, kafka_offset)`,
  ].join('\n')
}

/**
 * The view that reads each event once: the events table with `FINAL`, which merges rows with the
 * same Kafka coordinates as it reads. Its columns are the event's time, device, error code and
 * coordinates (on the epoch-ms layout both `timestamp_ms` and the whole-second `timestamp`).
 */
export function createDeduplicatedViewSql(qualifiedView: string, qualifiedEvents: string, layout: TimestampLayout, onCluster?: string): string {
  const time = layout === 'datetime64' ? 'timestamp' : 'timestamp_ms, timestamp'
  return (
    `CREATE VIEW IF NOT EXISTS ${qualifiedView}${onCluster ? ` ON CLUSTER ${onCluster}` : ''} AS\n` +
    `SELECT ${time}, device_ip, error_code, ${COORDINATE_COLUMNS.join(', ')} FROM ${qualifiedEvents} FINAL`
  )
}

/** The rollup's `hour` is a DateTime: whole seconds from 1970 to 2106-02-07T06:28:15Z. */
export const ROLLUP_MIN_MS = 0
/** The start of the last hour a DateTime holds whole; events from here on stay out of the hourly rollup. */
export const ROLLUP_END_MS = Math.floor(2 ** 32 / 3600) * 3_600_000

/**
 * The condition keeping the hourly rollup to the hours it can represent: events before 1970 or in
 * the last, partial hour of DateTime and after would reach it with a wrapped-around hour. Range
 * counts take those events from the events table instead (see `planRange`).
 */
export function rollupRangeCondition(layout: TimestampLayout): string {
  if (layout === 'epoch-ms') return `timestamp_ms >= ${ROLLUP_MIN_MS} AND timestamp_ms < ${ROLLUP_END_MS}`
  return (
    `timestamp >= toDateTime64('${formatDateTime64(ROLLUP_MIN_MS)}', 3, 'UTC') AND timestamp < ` +
    `toDateTime64('${formatDateTime64(ROLLUP_END_MS)}', 3, 'UTC')`
  )
}

/**
 * Table names of one events table and its rollups. Single server: `events`, `events_devices`,
 * `events_hourly`. Cluster: those names are Distributed tables over `events_local`,
 * `events_devices_local`, `events_hourly_local` on every node.
 */
export interface SchemaTables {
  /** What inserts and raw queries use (the Distributed table in a cluster). */
  events: string
  devices: string
  hourly: string
  /** The MergeTree tables holding the data (the same as the above on a single server). */
  eventsLocal: string
  devicesLocal: string
  hourlyLocal: string
  devicesView: string
  hourlyView: string
  /** Each event once (see {@link createDeduplicatedViewSql}). */
  deduplicated: string
  /**
   * Exists once the rollups hold every event that was in the events table before they existed,
   * and the hourly rollup only hours it can represent ({@link rollupRangeCondition}).
   */
  rollupsReady: string
  /** Marked rollups whose hourly rollup may hold wrapped-around hours; rebuilt by the backend. */
  rollupsReadyUnbounded: string
}

export function schemaTables(table: string, clustered: boolean): SchemaTables {
  const local = (name: string) => (clustered ? `${name}_local` : name)
  return {
    events: table,
    devices: `${table}_devices`,
    hourly: `${table}_hourly`,
    eventsLocal: local(table),
    devicesLocal: local(`${table}_devices`),
    hourlyLocal: local(`${table}_hourly`),
    devicesView: `${table}_devices_mv`,
    hourlyView: `${table}_hourly_mv`,
    deduplicated: `${table}_deduplicated`,
    rollupsReady: `${table}_rollups_ready_v2`,
    rollupsReadyUnbounded: `${table}_rollups_ready`,
  }
}

export interface SchemaOptions {
  database: string
  table: string
  layout: TimestampLayout
  /** Cluster name (remote_servers) for local + Distributed tables. */
  cluster?: string
  /** `on-cluster` (default): every statement runs ON CLUSTER; `local`: on the connected server only. */
  clusterDdl?: ClusterDdlMode
}

/**
 * Every statement that creates the events table and its rollups, in order (all IF NOT EXISTS):
 * - the events MergeTree (see {@link createTableSql});
 * - `<table>_devices`: ReplacingMergeTree of distinct device IPs, filled by a materialized view: the
 *   all-time count reads this table, whose size follows the number of devices, not of events;
 * - `<table>_hourly`: ReplacingMergeTree of distinct (UTC hour, error code, device IP), ordered by
 *   hour, filled by a materialized view: range and error-code counts read only the hours they need.
 * Duplicates (before background merges, or from retried inserts) are harmless: every count is
 * `uniqExact`. With a cluster the MergeTree tables are `*_local` on every node and the plain names
 * are Distributed tables over them, sharded by device IP.
 * Names are validated here; the result is safe to run as is.
 */
export function createSchemaSql(options: SchemaOptions): string[] {
  const database = quoteSqlIdentifier(options.database, 'ClickHouse database name')
  const tables = schemaTables(validateSqlIdentifier(options.table, 'ClickHouse table name'), options.cluster !== undefined)
  const q = (name: string) => `${database}.${quoteSqlIdentifier(name, 'ClickHouse table name')}`
  const cluster = options.cluster === undefined ? undefined : quoteSqlIdentifier(options.cluster, 'ClickHouse cluster name')
  const onCluster = cluster && (options.clusterDdl ?? 'on-cluster') === 'on-cluster' ? ` ON CLUSTER ${cluster}` : ''
  const statements = [
    `CREATE DATABASE IF NOT EXISTS ${database}${onCluster}`,
    createTableSql(q(tables.eventsLocal), options.layout, onCluster ? cluster : undefined),
    [`CREATE TABLE IF NOT EXISTS ${q(tables.devicesLocal)}${onCluster} (`, `  device_ip String`, `) ENGINE = ReplacingMergeTree`, `ORDER BY device_ip`].join(
      '\n',
    ),
    [
      `CREATE TABLE IF NOT EXISTS ${q(tables.hourlyLocal)}${onCluster} (`,
      `  hour DateTime('UTC'),`,
      `  error_code Int8,`,
      `  device_ip String`,
      `) ENGINE = ReplacingMergeTree`,
      `PARTITION BY toYYYYMM(hour)`,
      `ORDER BY (hour, error_code, device_ip)`,
    ].join('\n'),
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${q(tables.devicesView)}${onCluster} TO ${q(tables.devicesLocal)} AS\n` +
      `SELECT DISTINCT device_ip FROM ${q(tables.eventsLocal)}`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${q(tables.hourlyView)}${onCluster} TO ${q(tables.hourlyLocal)} AS\n` +
      `SELECT DISTINCT ${HOUR_OF_EVENT} AS hour, error_code, device_ip FROM ${q(tables.eventsLocal)} WHERE ${rollupRangeCondition(options.layout)}`,
  ]
  if (options.cluster !== undefined) {
    const engine = (local: string) =>
      `ENGINE = Distributed(${sqlString(options.cluster as string)}, ${sqlString(options.database)}, ${sqlString(local)}, cityHash64(device_ip))`
    const distributed = (name: string, local: string) => `CREATE TABLE IF NOT EXISTS ${q(name)}${onCluster} AS ${q(local)}\n${engine(local)}`
    // Old servers (epoch-ms layout) forward a MATERIALIZED column in Distributed inserts, which the
    // local table then refuses: there `timestamp` is an ALIAS of the same expression instead.
    const distributedEvents =
      options.layout === 'epoch-ms'
        ? [
            `CREATE TABLE IF NOT EXISTS ${q(tables.events)}${onCluster} (`,
            `  timestamp_ms Int64,`,
            `  timestamp DateTime('UTC') ALIAS toDateTime(intDiv(timestamp_ms, 1000), 'UTC'),`,
            `  device_ip String,`,
            `  error_code Int8,`,
            `  kafka_topic String,`,
            `  kafka_partition Int32,`,
            `  kafka_offset Int64`,
            `) ${engine(tables.eventsLocal)}`,
          ].join('\n')
        : distributed(tables.events, tables.eventsLocal)
    statements.push(distributedEvents, distributed(tables.devices, tables.devicesLocal), distributed(tables.hourly, tables.hourlyLocal))
  }
  return statements
}

/**
 * Statements that fill the rollups from events stored before the rollups existed, then mark them
 * complete (single server; run after the materialized views exist, so no event is missed — events
 * both copied and seen by a view are duplicates, which the counts ignore).
 */
export function backfillRollupsSql(database: string, table: string, layout: TimestampLayout): string[] {
  const tables = schemaTables(table, false)
  const q = (name: string) => `${quoteSqlIdentifier(database, 'ClickHouse database name')}.${quoteSqlIdentifier(name, 'ClickHouse table name')}`
  return [
    `INSERT INTO ${q(tables.devices)} (device_ip) SELECT device_ip FROM ${q(tables.events)}`,
    fillHourlySql(q, tables, layout),
    `CREATE TABLE IF NOT EXISTS ${q(tables.rollupsReady)} (created_at DateTime DEFAULT now()) ENGINE = TinyLog`,
  ]
}

/**
 * Statements that rebuild an hourly rollup filled without {@link rollupRangeCondition}: its view is
 * replaced, its rows dropped and filled again from the events (single server). The view is back
 * before the refill reads the events, so events inserted meanwhile reach the rollup one way or both.
 */
export function rebuildHourlyRollupSql(database: string, table: string, layout: TimestampLayout): string[] {
  const tables = schemaTables(table, false)
  const q = (name: string) => `${quoteSqlIdentifier(database, 'ClickHouse database name')}.${quoteSqlIdentifier(name, 'ClickHouse table name')}`
  const createView = createSchemaSql({database, table, layout}).find((statement) => statement.includes(`${q(tables.hourlyView)} TO`))
  return [
    `DROP TABLE IF EXISTS ${q(tables.hourlyView)}`,
    `TRUNCATE TABLE ${q(tables.hourly)}`,
    createView as string,
    fillHourlySql(q, tables, layout),
    `CREATE TABLE IF NOT EXISTS ${q(tables.rollupsReady)} (created_at DateTime DEFAULT now()) ENGINE = TinyLog`,
    `DROP TABLE IF EXISTS ${q(tables.rollupsReadyUnbounded)}`,
  ]
}

function fillHourlySql(q: (name: string) => string, tables: SchemaTables, layout: TimestampLayout): string {
  return (
    `INSERT INTO ${q(tables.hourly)} (hour, error_code, device_ip) SELECT ${HOUR_OF_EVENT} AS hour, error_code, device_ip FROM ${q(tables.events)} ` +
    `WHERE ${rollupRangeCondition(layout)}`
  )
}

/** UTC hour of an event, in both layouts (`timestamp` is DateTime or DateTime64). */
const HOUR_OF_EVENT = 'toStartOfHour(timestamp)'

function sqlString(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`
}

/** Epoch milliseconds → `2021-12-03 16:15:30.123`, the text form DateTime64(3, 'UTC') reads. */
export function formatDateTime64(timestampMs: number): string {
  return new Date(timestampMs).toISOString().slice(0, 23).replace('T', ' ')
}
