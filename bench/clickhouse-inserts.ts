/**
 * What `ipc consume --backend clickhouse` costs the ClickHouse server, table by table: the same
 * events inserted the way ipc inserts them (the clickhouse backend's `add()` and `flush()`: TsvBatch
 * rows, TabSeparated inserts of up to 10,000 rows, one in flight at a time) into the schema the
 * backend creates, and into that schema with materialized views dropped, and into plain MergeTrees.
 *
 *   node dist/bench/clickhouse-inserts.js
 *
 * Layouts, each in a fresh database per round; the backend creates its schema in every one (for the
 * plain MergeTrees the events table is created first, which the backend then keeps as it is), and the
 * views a layout leaves out are dropped before the first insert:
 *   full      events (ReplacingMergeTree keyed by Kafka coordinates) + both views and rollups
 *   events    the events table alone
 *   devices   events + the devices view (SELECT DISTINCT device_ip) and its rollup
 *   hourly    events + the hourly view (SELECT DISTINCT hour, error_code, device_ip) and its rollup
 *   plain     MergeTree with the same columns, ORDER BY tuple() (no key)
 *   engine    MergeTree (timestamp_ms, device_ip, error_code) ORDER BY device_ip, the table the Kafka
 *             engine benchmark fills (ipc writes it in its unkeyed epoch-ms layout)
 * The events are generated once (ipc produce's generator, parsed with parseEvent, given Kafka
 * coordinates over 16 partitions). Every round runs every layout once, each round from another one; before each timed
 * part the server's merges settle. Measured: events/s from the first add() to the last durable
 * receipt; the server's CPU (user + system from /proc/<pid>/stat) over the inserts, and over a fixed
 * settle time after them (merges of the parts just written), less the server's idle CPU over as long.
 * Derived: each view's cost (its layout minus events alone), the key's (events alone minus plain),
 * as medians of per-round differences. A breakdown, not a target: no PASS/MISS.
 * Settings: BENCH_CH_INSERTS_EVENTS, BENCH_CH_INSERTS_DEVICES, BENCH_CH_INSERTS_ROUNDS,
 * BENCH_CH_INSERTS_SETTLE_MS, BENCH_CH_INSERTS_BATCH_SIZE (rows per insert, default the backend's),
 * BENCH_CH_INSERTS_LAYOUTS (comma-separated names).
 * Writes bench/results/clickhouse-inserts.json.
 */
import {createClient as createClickHouseClient, type ClickHouseClient} from '@clickhouse/client'
import {BackendError, type DeviceEvent} from '../src/backends/backend.js'
import {ClickHouseBackend, supportsDateTime64} from '../src/backends/clickhouse/clickhouse-backend.js'
import {ClickHouseConnection} from '../src/backends/clickhouse/connection.js'
import {EventsTable, tableNames} from '../src/backends/clickhouse/events-table.js'
import type {ClickHouseOptions} from '../src/backends/clickhouse/options.js'
import {ClickHouseWriter} from '../src/backends/clickhouse/writer.js'
import {DEFAULT_BATCH_SIZE} from '../src/backends/options.js'
import {createTableSql, schemaTables, type TimestampLayout} from '../src/backends/clickhouse/schema.js'
import {formatInt, renderTable} from '../src/cli/output.js'
import {parseEvent} from '../src/events/event.js'
import {EventGenerator} from '../src/loadgen/generator.js'
import {sleep} from '../src/util/async.js'
import {
  BenchError,
  dropClickHouseDatabases,
  envInteger,
  formatMicros,
  idleServiceCpu,
  measureServiceCpu,
  median,
  medianOf,
  microsPerEvent,
  progress,
  runBenchmark,
  type ServiceEnv,
  uniqueName,
  waitForClickHouseMerges,
  withServices,
  writeResults,
} from './support.js'

const EVENTS = envInteger('BENCH_CH_INSERTS_EVENTS', 500_000)
const DEVICES = envInteger('BENCH_CH_INSERTS_DEVICES', 10_000)
const ROUNDS = envInteger('BENCH_CH_INSERTS_ROUNDS', 3)
/** After the inserts, the server's CPU is counted for this long: the merges of the parts just written. */
const SETTLE_MS = envInteger('BENCH_CH_INSERTS_SETTLE_MS', 5000)
/** Rows per insert: the backend's batch size (`consume --batch-size`). */
const BATCH_SIZE = envInteger('BENCH_CH_INSERTS_BATCH_SIZE', DEFAULT_BATCH_SIZE)
const PARTITIONS = 16
const SEED = 20_241_122
const TOPIC = 'ipc_bench_clickhouse_inserts'
/** Events per add(): what the consumer hands the backend per fetched batch is of this order. */
const ADD_CHUNK = 1000
const TABLE = 'events'

type LayoutName = 'full' | 'events' | 'devices' | 'hourly' | 'plain' | 'engine'

interface Layout {
  name: LayoutName
  label: string
  /** Which of the backend's materialized views stay. */
  views: {devices: boolean; hourly: boolean}
  /** Inserted by the backend's writer alone, without its schema (see {@link writerInserter}). */
  writerOnly?: boolean
  /** The events table, created before the backend prepares its schema (which then keeps it). */
  table?: (qualified: string, layout: TimestampLayout) => string
}

const LAYOUTS: readonly Layout[] = [
  {name: 'full', label: '1 full schema, as ipc creates it (events + both views + rollups)', views: {devices: true, hourly: true}},
  {name: 'events', label: '2 events table alone (ReplacingMergeTree by Kafka coordinates)', views: {devices: false, hourly: false}},
  {name: 'devices', label: '3 events + devices view (DISTINCT device_ip) + rollup', views: {devices: true, hourly: false}},
  {name: 'hourly', label: '4 events + hourly view (DISTINCT hour, error_code, device_ip) + rollup', views: {devices: false, hourly: true}},
  {
    name: 'plain',
    label: '5 plain MergeTree, same columns, ORDER BY tuple()',
    views: {devices: false, hourly: false},
    // ipc's own events table in the server's layout, unkeyed.
    table: (qualified, layout) =>
      createTableSql(qualified, layout)
        .replace('ENGINE = ReplacingMergeTree', 'ENGINE = MergeTree')
        .replace(/ORDER BY .*$/, 'ORDER BY tuple()'),
  },
  {
    name: 'engine',
    label: "6 Kafka engine bench's MergeTree (3 columns, ORDER BY device_ip)",
    views: {devices: false, hourly: false},
    writerOnly: true,
    table: (qualified) => `CREATE TABLE ${qualified} (timestamp_ms Int64, device_ip String, error_code Int8) ENGINE = MergeTree ORDER BY device_ip`,
  },
]

function selectedLayouts(): Layout[] {
  const names = process.env.BENCH_CH_INSERTS_LAYOUTS
  if (!names) return [...LAYOUTS]
  const wanted = names.split(',').map((name) => name.trim())
  const unknown = wanted.filter((name) => !LAYOUTS.some((layout) => layout.name === name))
  if (unknown.length > 0) throw new BenchError(`BENCH_CH_INSERTS_LAYOUTS: unknown layouts ${unknown.join(', ')} (use ${LAYOUTS.map((l) => l.name).join(', ')})`)
  return LAYOUTS.filter((layout) => wanted.includes(layout.name))
}

interface InsertRun {
  eventsPerSecond: number
  insertMs: number
  /** Server CPU over the inserts (first add() to the last durable receipt), per event. */
  insertCpuMicrosPerEvent?: number
  /** Server CPU over the settle time after them, less its idle CPU over as long, per event. */
  settleCpuMicrosPerEvent?: number
  /** The same without the idle CPU taken off. */
  settleRawCpuMicrosPerEvent?: number
  /** Inserts plus settle. */
  totalCpuMicrosPerEvent?: number
  /** The settle time: SETTLE_MS, then until no merge ran. */
  settleMs: number
  /** Merges still running when the settle time ended. */
  mergesAfterSettle: number
  /** Active parts of each table of the database right after the inserts, and after the settle time. */
  partsAfterInserts: Record<string, number>
  activeParts: Record<string, number>
}

/** The data set: ipc produce's events, parsed as the consumer parses them, with Kafka coordinates. */
function generateEvents(): {events: DeviceEvent[]; distinctDevices: number} {
  const generator = new EventGenerator({numDevices: DEVICES, seed: SEED})
  const events: DeviceEvent[] = []
  for (let index = 0; index < EVENTS; index++) {
    const result = parseEvent(generator.next().value)
    if (!result.ok) throw new BenchError(`generated event rejected: ${result.detail}`)
    const partition = index % PARTITIONS
    events.push({...result.event, source: {topic: TOPIC, partition, offset: String(Math.floor(index / PARTITIONS))}})
  }
  return {events, distinctDevices: generator.distinctDevices}
}

/** Inserts every event and resolves once all are durable. */
interface Inserter {
  insert(events: readonly DeviceEvent[]): Promise<void>
  close(): Promise<void>
}

function backendOptions(env: ServiceEnv, database: string): ClickHouseOptions {
  return {
    clickhouseUrl: env.CLICKHOUSE_URL,
    clickhouseUser: 'default',
    clickhousePassword: '',
    clickhouseDatabase: database,
    clickhouseTable: TABLE,
    batchSize: BATCH_SIZE,
  }
}

/** As `ipc consume` inserts: the backend (schema prepared by connect()), add() per chunk, then flush(). */
async function backendInserter(env: ServiceEnv, database: string): Promise<Inserter> {
  const backend = new ClickHouseBackend(backendOptions(env, database))
  await backend.connect()
  return {
    async insert(events) {
      const receipts: Array<Promise<void>> = []
      for (let start = 0; start < events.length; start += ADD_CHUNK) receipts.push((await backend.add(events.slice(start, start + ADD_CHUNK))).durable)
      await backend.flush()
      await Promise.all(receipts)
    },
    close: () => backend.close(),
  }
}

/**
 * The backend's writer alone, for a table the backend cannot prepare rollups on (no `timestamp`
 * column): TsvBatch batches of the backend's batch size in the unkeyed epoch-ms shape, each
 * inserted by ClickHouseWriter, one after the other.
 */
function writerInserter(env: ServiceEnv, database: string): Inserter {
  const options = backendOptions(env, database)
  const connection = new ClickHouseConnection(new URL(options.clickhouseUrl), options.clickhouseUrl, options)
  const table = new EventsTable(connection, tableNames(options))
  table.shape = {layout: 'epoch-ms', key: {keyed: false}}
  const writer = new ClickHouseWriter(connection, table)
  return {
    async insert(events) {
      for (let start = 0; start < events.length; start += BATCH_SIZE) {
        const batch = writer.newBatch()
        for (let index = start; index < Math.min(events.length, start + BATCH_SIZE); index++) batch.append(events[index])
        await writer.write(batch)
      }
    },
    close: () => connection.close(new BackendError('closed', 'clickhouse', options.clickhouseUrl)),
  }
}

/** Active parts of each table of a database. */
async function activeParts(client: ClickHouseClient, database: string): Promise<Record<string, number>> {
  const parts = await (
    await client.query({
      query: `SELECT table, count() AS parts FROM system.parts WHERE database = '${database}' AND active GROUP BY table ORDER BY table`,
      format: 'JSONEachRow',
    })
  ).json<{table: string; parts: string | number}>()
  return Object.fromEntries(parts.map((part) => [part.table, Number(part.parts)]))
}

async function queryNumber(client: ClickHouseClient, query: string): Promise<number> {
  const [row] = await (await client.query({query, format: 'JSONEachRow'})).json<Record<string, string | number>>()
  return Number(Object.values(row)[0])
}

/** One layout in a fresh database: schema, inserts through the backend, settle time, checks. */
async function runLayout(
  env: ServiceEnv,
  client: ClickHouseClient,
  layout: Layout,
  database: string,
  data: {events: readonly DeviceEvent[]; distinctDevices: number},
  idleCpuMsPerSecond: number | undefined,
  serverLayout: TimestampLayout,
  mergesStopped: boolean,
): Promise<InsertRun> {
  const tables = schemaTables(TABLE, false)
  const q = (name: string) => `${database}.${name}`
  if (layout.table) {
    await client.command({query: `CREATE DATABASE ${database}`})
    await client.command({query: layout.table(q(TABLE), serverLayout)})
  }
  const inserter = layout.writerOnly ? writerInserter(env, database) : await backendInserter(env, database)
  try {
    if (!layout.writerOnly) {
      if (!layout.views.devices) await client.command({query: `DROP TABLE ${q(tables.devicesView)}`})
      if (!layout.views.hourly) await client.command({query: `DROP TABLE ${q(tables.hourlyView)}`})
    }
    const mergeTrees = (
      await (
        await client.query({query: `SELECT name FROM system.tables WHERE database = '${database}' AND engine LIKE '%MergeTree'`, format: 'JSONEachRow'})
      ).json<{name: string}>()
    ).map((table) => q(table.name))
    if (mergesStopped) for (const table of mergeTrees) await client.command({query: `SYSTEM STOP MERGES ${table}`})
    await waitForClickHouseMerges(env.CLICKHOUSE_URL)

    const stopInsertCpu = await measureServiceCpu(['clickhouse'])
    const started = performance.now()
    await inserter.insert(data.events)
    const insertMs = performance.now() - started
    const insertCpuMs = await stopInsertCpu()
    const partsAfterInserts = await activeParts(client, database)

    // The settle time, then until no merge runs (at most a minute): the merges of the parts just written.
    const stopSettleCpu = await measureServiceCpu(['clickhouse'])
    const settleStarted = performance.now()
    if (mergesStopped) for (const table of mergeTrees) await client.command({query: `SYSTEM START MERGES ${table}`})
    await sleep(SETTLE_MS)
    await waitForClickHouseMerges(env.CLICKHOUSE_URL, 60_000)
    const settleRawCpuMs = await stopSettleCpu()
    const settleMs = performance.now() - settleStarted
    const mergesAfterSettle = await queryNumber(client, `SELECT count() FROM system.merges WHERE database = '${database}'`)
    const settleCpuMs =
      settleRawCpuMs === undefined || idleCpuMsPerSecond === undefined ? undefined : Math.max(0, settleRawCpuMs - (idleCpuMsPerSecond * settleMs) / 1000)

    // Checks, after the clock: every event stored, every device in each rollup that is fed.
    const rows = await queryNumber(client, `SELECT count() FROM ${q(TABLE)}`)
    if (rows !== data.events.length) throw new BenchError(`${layout.name}: the events table holds ${rows} rows, expected ${data.events.length}`)
    for (const [fed, rollup] of layout.writerOnly
      ? []
      : ([
          [layout.views.devices, tables.devices],
          [layout.views.hourly, tables.hourly],
        ] as const)) {
      const devices = await queryNumber(client, `SELECT uniqExact(device_ip) FROM ${q(rollup)}`)
      const expected = fed ? data.distinctDevices : 0
      if (devices !== expected) throw new BenchError(`${layout.name}: ${rollup} holds ${devices} devices, expected ${expected}`)
    }
    const parts = await activeParts(client, database)

    const insertCpu = microsPerEvent(insertCpuMs, data.events.length)
    const settleCpu = microsPerEvent(settleCpuMs, data.events.length)
    return {
      eventsPerSecond: (data.events.length * 1000) / insertMs,
      insertMs,
      insertCpuMicrosPerEvent: insertCpu,
      settleCpuMicrosPerEvent: settleCpu,
      settleRawCpuMicrosPerEvent: microsPerEvent(settleRawCpuMs, data.events.length),
      totalCpuMicrosPerEvent: insertCpu === undefined || settleCpu === undefined ? undefined : insertCpu + settleCpu,
      settleMs,
      mergesAfterSettle,
      partsAfterInserts,
      activeParts: parts,
    }
  } finally {
    await inserter.close()
  }
}

interface LayoutSummary {
  label: string
  eventsPerSecond: number
  insertCpuMicrosPerEvent?: number
  settleCpuMicrosPerEvent?: number
  totalCpuMicrosPerEvent?: number
  /** Server CPU over the inserts with the tables' merges stopped: the inserts alone. */
  stoppedInsertCpuMicrosPerEvent?: number
  /** Server CPU after those inserts, merges started again: their merges, deferred. */
  stoppedSettleCpuMicrosPerEvent?: number
  /** The merges' share of the total: total (merges running) minus the inserts with merges stopped, per round. */
  mergeCpuMicrosPerEvent?: number
  runs: InsertRun[]
  stoppedRuns: InsertRun[]
}

/** A round's merges: its total with merges running less its inserts with merges stopped. */
function mergeCpu(run: InsertRun, stopped: InsertRun | undefined): number | undefined {
  const total = run.totalCpuMicrosPerEvent
  const inserts = stopped?.insertCpuMicrosPerEvent
  return total === undefined || inserts === undefined ? undefined : total - inserts
}

/** Median over the rounds of `minuend − subtrahend (− …)` of a measure, each round's runs paired. */
function roundDifference(
  runs: Partial<Record<LayoutName, InsertRun[]>>,
  plus: readonly LayoutName[],
  minus: readonly LayoutName[],
  measure: (run: InsertRun, round: number, name: LayoutName) => number | undefined,
): number | undefined {
  if ([...plus, ...minus].some((name) => runs[name] === undefined)) return undefined
  const differences = Array.from({length: ROUNDS}, (_, round) => {
    let sum = 0
    for (const name of plus) sum += measure((runs[name] as InsertRun[])[round], round, name) ?? Number.NaN
    for (const name of minus) sum -= measure((runs[name] as InsertRun[])[round], round, name) ?? Number.NaN
    return sum
  })
  return medianOf(differences)
}

async function main(): Promise<void> {
  const layouts = selectedLayouts()
  await withServices(async (env) => {
    progress(`generating ${formatInt(EVENTS)} events of ${formatInt(DEVICES)} devices`)
    const data = generateEvents()
    const client = createClickHouseClient({url: env.CLICKHOUSE_URL})
    const id = uniqueName('ipc_bench_chins')
    const databases: string[] = []
    const runs: Partial<Record<LayoutName, InsertRun[]>> = {}
    const stoppedRuns: Partial<Record<LayoutName, InsertRun[]>> = {}
    let idleCpu: number | undefined
    let serverLayout: TimestampLayout = 'datetime64'
    try {
      const version = String((await (await client.query({query: 'SELECT version() AS v', format: 'JSONEachRow'})).json<{v: string}>())[0].v)
      serverLayout = supportsDateTime64(version) ? 'datetime64' : 'epoch-ms'
      progress(`ClickHouse ${version}: the events table's layout is ${serverLayout}`)
      await waitForClickHouseMerges(env.CLICKHOUSE_URL)
      idleCpu = (await idleServiceCpu(['clickhouse'], 3000)).clickhouse
      // Every round runs every layout once, so a busy moment on the machine does not favour one.
      for (let round = 1; round <= ROUNDS; round++) {
        // Each round starts at another layout, so that none always runs first (after the idle measurement) or right after another.
        const shift = ((round - 1) * Math.ceil(layouts.length / ROUNDS)) % layouts.length
        for (const layout of [...layouts.slice(shift), ...layouts.slice(0, shift)]) {
          for (const mergesStopped of [false, true]) {
            const database = `${id}_${layout.name}_${mergesStopped ? 'stopped_' : ''}${round}`
            databases.push(database)
            progress(`round ${round}/${ROUNDS}: ${layout.label}${mergesStopped ? ', merges stopped during the inserts' : ''}`)
            const run = await runLayout(env, client, layout, database, data, idleCpu, serverLayout, mergesStopped)
            ;((mergesStopped ? stoppedRuns : runs)[layout.name] ??= []).push(run)
            progress(
              `  ${formatInt(run.eventsPerSecond)} events/s, server CPU ${formatMicros(run.insertCpuMicrosPerEvent)} µs/event inserting + ` +
                `${formatMicros(run.settleCpuMicrosPerEvent)} in ${formatInt(run.settleMs)} ms after; ${run.mergesAfterSettle} merges left; ` +
                `parts ${JSON.stringify(run.partsAfterInserts)} → ${JSON.stringify(run.activeParts)}`,
            )
            // Its parts would otherwise merge during the next run.
            await dropClickHouseDatabases(env.CLICKHOUSE_URL, [database])
          }
        }
      }
    } finally {
      await client.close()
      await dropClickHouseDatabases(env.CLICKHOUSE_URL, databases)
    }

    const summaries = Object.fromEntries(
      layouts.map((layout) => {
        const layoutRuns = runs[layout.name] as InsertRun[]
        const summary: LayoutSummary = {
          label: layout.label,
          eventsPerSecond: median(layoutRuns.map((run) => run.eventsPerSecond)),
          insertCpuMicrosPerEvent: medianOf(layoutRuns.map((run) => run.insertCpuMicrosPerEvent)),
          settleCpuMicrosPerEvent: medianOf(layoutRuns.map((run) => run.settleCpuMicrosPerEvent)),
          totalCpuMicrosPerEvent: medianOf(layoutRuns.map((run) => run.totalCpuMicrosPerEvent)),
          stoppedInsertCpuMicrosPerEvent: medianOf((stoppedRuns[layout.name] as InsertRun[]).map((run) => run.insertCpuMicrosPerEvent)),
          stoppedSettleCpuMicrosPerEvent: medianOf((stoppedRuns[layout.name] as InsertRun[]).map((run) => run.settleCpuMicrosPerEvent)),
          mergeCpuMicrosPerEvent: medianOf(layoutRuns.map((run, index) => mergeCpu(run, (stoppedRuns[layout.name] as InsertRun[])[index]))),
          runs: layoutRuns,
          stoppedRuns: stoppedRuns[layout.name] as InsertRun[],
        }
        return [layout.name, summary]
      }),
    ) as Partial<Record<LayoutName, LayoutSummary>>

    const rows: string[][] = layouts.map((layout) => {
      const s = summaries[layout.name] as LayoutSummary
      return [
        s.label,
        formatInt(s.eventsPerSecond),
        formatMicros(s.insertCpuMicrosPerEvent),
        formatMicros(s.settleCpuMicrosPerEvent),
        formatMicros(s.totalCpuMicrosPerEvent),
        formatMicros(s.stoppedInsertCpuMicrosPerEvent),
        formatMicros(s.mergeCpuMicrosPerEvent),
      ]
    })
    const derivations: Array<{name: string; label: string; plus: LayoutName[]; minus: LayoutName[]}> = [
      {name: 'bothViews', label: 'both views + rollups (1 − 2)', plus: ['full'], minus: ['events']},
      {name: 'devicesView', label: 'devices view + rollup (3 − 2)', plus: ['devices'], minus: ['events']},
      {name: 'hourlyView', label: 'hourly view + rollup (4 − 2)', plus: ['hourly'], minus: ['events']},
      {name: 'viewsTogether', label: 'the views together beyond each alone (1 − 3 − 4 + 2)', plus: ['full', 'events'], minus: ['devices', 'hourly']},
      {name: 'key', label: 'ReplacingMergeTree by coordinates vs no key (2 − 5)', plus: ['events'], minus: ['plain']},
      {name: 'coordinates', label: 'coordinate columns, time columns and monthly partitions vs the engine table (5 − 6)', plus: ['plain'], minus: ['engine']},
    ]
    const derived: Record<string, {label: string; insert?: number; settle?: number; total?: number; stoppedInsert?: number; merges?: number}> = {}
    for (const derivation of derivations) {
      const difference = (of: Partial<Record<LayoutName, InsertRun[]>>, measure: (run: InsertRun, round: number, name: LayoutName) => number | undefined) =>
        roundDifference(of, derivation.plus, derivation.minus, measure)
      const insert = difference(runs, (run) => run.insertCpuMicrosPerEvent)
      if (insert === undefined) continue
      const settle = difference(runs, (run) => run.settleCpuMicrosPerEvent)
      const total = difference(runs, (run) => run.totalCpuMicrosPerEvent)
      const stoppedInsert = difference(stoppedRuns, (run) => run.insertCpuMicrosPerEvent)
      const merges = difference(runs, (run, round, name) => mergeCpu(run, stoppedRuns[name]?.[round]))
      derived[derivation.name] = {label: derivation.label, insert, settle, total, stoppedInsert, merges}
      rows.push([
        `Δ ${derivation.label}`,
        '-',
        formatMicros(insert),
        formatMicros(settle),
        formatMicros(total),
        formatMicros(stoppedInsert),
        formatMicros(merges),
      ])
    }
    console.log(
      renderTable(
        ['layout', 'events/s', 'server CPU µs/event: inserts', '+ after (merges)', '= total', 'inserts, merges stopped', 'merges: total − that'],
        rows,
      ),
    )
    console.log(
      `data: ${formatInt(EVENTS)} events of ${formatInt(data.distinctDevices)} devices, inserted through the clickhouse backend's add()/flush() ` +
        `(TsvBatch, TabSeparated inserts of up to ${formatInt(BATCH_SIZE)} rows, one in flight), each layout in a fresh database; median of ${ROUNDS} rounds, ` +
        `Δ rows: median of per-round differences; events/s from the first add() to the last durable receipt`,
    )
    console.log(
      `server CPU: user + system time of the ClickHouse server (/proc/<pid>/stat) per event, over the inserts, and after them over ${SETTLE_MS / 1000} s ` +
        `and until no merge ran, less its idle CPU over as long (${idleCpu === undefined ? '-' : idleCpu.toFixed(0)} ms CPU/s, measured before the rounds); ` +
        `merges that run during the inserts count in the inserts column. 'merges stopped': the same inserts into another fresh database with ` +
        `SYSTEM STOP MERGES on its tables until the inserts ended (the inserts alone); the merges' share is each round's total less that`,
    )

    writeResults('clickhouse-inserts', {
      timestampLayout: serverLayout,
      batchSize: BATCH_SIZE,
      events: EVENTS,
      distinctDevices: data.distinctDevices,
      rounds: ROUNDS,
      settleMs: SETTLE_MS,
      idleClickHouseCpuMsPerSecond: idleCpu,
      statistic: 'median over rounds; derived: median of per-round differences',
      layouts: summaries,
      derived,
    })
  })
}

runBenchmark('clickhouse-inserts', main)
