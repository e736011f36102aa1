/**
 * ClickHouse's own Kafka table engine, the rival of `ipc consume --backend clickhouse`: a Kafka table
 * reads the topic inside the server and a materialized view parses every message into a MergeTree.
 *
 * The messages are read as one String column (TabSeparated, one message per row) and parsed by the
 * view: JSONEachRow cannot take the data set, since a numeric `timestamp` fails its block and the
 * engine then skips those messages without a word. The view reads the ten timestamp shapes of
 * `ipc produce` (ISO 8601 with Z, an offset or no zone = UTC; epoch seconds or milliseconds as
 * numbers, digit strings or quoted digit strings) to epoch milliseconds, the same instants
 * `parseEvent` gives. What it does not do that `ipc consume` does: no validation (an IP or error code
 * is taken as it comes, a malformed timestamp becomes 0, an unparsable row becomes zeros and empty
 * strings), no dead letters, no Kafka coordinates stored for deduplication, no rollup tables, and
 * TabSeparated would unescape a backslash inside a message (the data set has none).
 */
import {createClient as createClickHouseClient, type ClickHouseClient} from '@clickhouse/client'
import {createKafka} from '../src/kafka/client.js'
import {sleep} from '../src/util/async.js'
import {BenchError, measureServiceCpu, microsPerEvent, readVmRssKb, servicePid, type ServiceEnv, topicOffsets} from './support.js'

/** How often the target table's row count (and the server's RSS) is read while the engine runs. */
const POLL_MS = 50

/*
 * The engine's defaults are kept. It reads blocks of `max_block_size` (65,536) messages
 * (kafka_max_block_size 0), yet every run's rows land in the table at once, after a poll of the topic
 * came back empty for 500 ms; kafka_max_block_size = 1,048,576 measured the same. Its background
 * thread takes `stream_flush_interval_ms` (7,500 ms) from the server's default profile, so neither a
 * session nor a query setting can shorten it.
 */

export interface EngineOptions {
  topic: string
  /** A fresh database: created here, left for the caller to drop. */
  database: string
  /** A fresh consumer group. */
  group: string
  events: number
  distinctDevices: number
  timeoutMs: number
}

export interface EngineRun {
  eventsPerSecond: number
  /** From the view's creation to the last row stored (the poll that first saw every row). */
  elapsedMs: number
  /** From the view's creation to the first rows stored. */
  firstRowMs: number
  /** CPU of the ClickHouse server (the reader here) per event. */
  cpuMicrosPerEvent?: number
  /** CPU of the Kafka broker per event. */
  serverCpuMicrosPerEvent?: number
  /** Highest VmRSS of the ClickHouse server sampled during the run (VmHWM would be its lifetime peak). */
  peakRssKb?: number
  /** VmRSS of the ClickHouse server just before the view's creation. */
  rssBeforeKb?: number
}

/** The target table, the Kafka table and the view that moves rows from one to the other. */
export function engineDdl(brokers: string, options: Pick<EngineOptions, 'topic' | 'database' | 'group'>): {target: string; queue: string; view: string} {
  const {database, topic, group} = options
  return {
    target: `CREATE TABLE ${database}.events (timestamp_ms Int64, device_ip String, error_code Int8) ENGINE = MergeTree ORDER BY device_ip`,
    queue:
      `CREATE TABLE ${database}.queue (raw String) ENGINE = Kafka SETTINGS kafka_broker_list = '${brokers}', ` +
      `kafka_topic_list = '${topic}', kafka_group_name = '${group}', kafka_format = 'TabSeparated', ` +
      String.raw`kafka_row_delimiter = '\n', kafka_num_consumers = 1`,
    view: `CREATE MATERIALIZED VIEW ${database}.consumer TO ${database}.events AS\n${viewSelect(`${database}.queue`)}`,
  }
}

/**
 * `timestamp` as it stands in the JSON (raw) and as a string with quotes inside it removed; digits
 * below 1e11 are seconds, otherwise milliseconds, as `parseEvent` reads them (it also reads micro-
 * and nanoseconds, which the data set does not hold); other strings are ISO 8601 date-times.
 */
function viewSelect(source: string): string {
  return String.raw`WITH
    visitParamExtractRaw(raw, 'timestamp') AS ts_raw,
    replaceAll(visitParamExtractString(raw, 'timestamp'), '\'', '') AS ts_text
SELECT
    multiIf(
        startsWith(ts_raw, '"') = 0, toInt64OrZero(ts_raw) * if(abs(toInt64OrZero(ts_raw)) < 100000000000, 1000, 1),
        match(ts_text, '^-?[0-9]+$'), toInt64OrZero(ts_text) * if(abs(toInt64OrZero(ts_text)) < 100000000000, 1000, 1),
        toInt64(toUnixTimestamp(parseDateTimeBestEffortOrZero(ts_text, 'UTC'))) * 1000
            + toInt64OrZero(substring(concat(extract(ts_text, '\\.([0-9]+)'), '00'), 1, 3))
    ) AS timestamp_ms,
    visitParamExtractString(raw, 'device_ip') AS device_ip,
    toInt8(visitParamExtractInt(raw, 'error_code')) AS error_code
FROM ${source}`
}

/**
 * Commits the group's offsets at the start of every partition: the engine's consumer starts a group
 * without offsets at the end of the topic (librdkafka's auto.offset.reset), and 18.16 has no table
 * setting for it.
 */
async function startGroupAtBeginning(brokers: string, group: string, topic: string): Promise<void> {
  const offsets = await topicOffsets(brokers, topic)
  const admin = createKafka({brokers: brokers.split(','), clientId: 'ipc-bench'}).admin()
  await admin.connect()
  try {
    await admin.setOffsets({groupId: group, topic, partitions: offsets.map(({partition, low}) => ({partition, offset: String(low)}))})
  } finally {
    await admin.disconnect()
  }
}

async function queryNumbers<T extends string>(client: ClickHouseClient, query: string): Promise<Record<T, number>> {
  const [row] = await (await client.query({query, format: 'JSONEachRow'})).json<Record<T, string | number>>()
  return Object.fromEntries(Object.entries(row).map(([name, value]) => [name, Number(value)])) as Record<T, number>
}

/** Polls the target table until it holds every event; returns the times (ms after `started`) of the first and the last rows. */
async function waitForRows(
  client: ClickHouseClient,
  options: EngineOptions,
  started: number,
  onPoll: () => void,
): Promise<{firstRowMs: number; lastRowMs: number}> {
  let firstRowMs = Number.NaN
  for (;;) {
    const polled = performance.now() - started
    const {rows} = await queryNumbers<'rows'>(client, `SELECT count() AS rows FROM ${options.database}.events`)
    onPoll()
    if (rows > 0 && Number.isNaN(firstRowMs)) firstRowMs = polled
    if (rows >= options.events) {
      if (rows > options.events) throw new BenchError(`the ClickHouse Kafka engine stored ${rows} rows, expected ${options.events}`)
      return {firstRowMs, lastRowMs: polled}
    }
    if (polled > options.timeoutMs)
      throw new BenchError(`the ClickHouse Kafka engine stored ${rows} of ${options.events} rows within ${options.timeoutMs / 1000} s`)
    await sleep(POLL_MS)
  }
}

/** Throws unless every event was stored once with a device and a time, and the devices are exactly the data set's. */
async function checkStored(client: ClickHouseClient, options: EngineOptions): Promise<void> {
  const stored = await queryNumbers<'devices' | 'unparsed'>(
    client,
    `SELECT uniqExact(device_ip) AS devices, countIf(timestamp_ms = 0 OR device_ip = '') AS unparsed FROM ${options.database}.events`,
  )
  if (stored.unparsed !== 0) throw new BenchError(`the ClickHouse Kafka engine stored ${stored.unparsed} rows without a time or a device`)
  if (stored.devices !== options.distinctDevices)
    throw new BenchError(`the ClickHouse Kafka engine counted ${stored.devices} devices, expected ${options.distinctDevices}`)
}

/** One run: creates the tables, times the view from its creation to the last row, checks the rows, then stops the engine. */
export async function runKafkaEngine(env: ServiceEnv, options: EngineOptions): Promise<EngineRun> {
  const client = createClickHouseClient({url: env.CLICKHOUSE_URL})
  const ddl = engineDdl(env.KAFKA_BROKERS, options)
  const clickhousePid = servicePid('clickhouse')
  try {
    await client.command({query: `CREATE DATABASE ${options.database}`})
    await client.command({query: ddl.target})
    await startGroupAtBeginning(env.KAFKA_BROKERS, options.group, options.topic)
    await client.command({query: ddl.queue})
    const rssBeforeKb = clickhousePid === undefined ? undefined : readVmRssKb(clickhousePid)
    let peakRssKb = rssBeforeKb
    const stopClickHouseCpu = await measureServiceCpu(['clickhouse'])
    const stopBrokerCpu = await measureServiceCpu(['kafka'])
    const started = performance.now()
    await client.command({query: ddl.view})
    const {firstRowMs, lastRowMs} = await waitForRows(client, options, started, () => {
      const rss = clickhousePid === undefined ? undefined : readVmRssKb(clickhousePid)
      if (rss !== undefined) peakRssKb = Math.max(peakRssKb ?? 0, rss)
    })
    const [clickhouseCpuMs, brokerCpuMs] = [await stopClickHouseCpu(), await stopBrokerCpu()]
    await checkStored(client, options)
    return {
      eventsPerSecond: (options.events * 1000) / lastRowMs,
      elapsedMs: lastRowMs,
      firstRowMs,
      cpuMicrosPerEvent: microsPerEvent(clickhouseCpuMs, options.events),
      serverCpuMicrosPerEvent: microsPerEvent(brokerCpuMs, options.events),
      peakRssKb,
      rssBeforeKb,
    }
  } finally {
    // The view first, so the engine stops streaming, then its consumer.
    for (const table of ['consumer', 'queue']) await client.command({query: `DROP TABLE IF EXISTS ${options.database}.${table}`}).catch(() => undefined)
    await client.close()
  }
}
