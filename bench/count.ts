/**
 * Count latency: the backends' `count()` (what `ipc count` and every consumer report run), timed
 * over many sequential calls, for redis and for clickhouse holding 1M and 10M events.
 *
 *   node dist/bench/count.js
 *
 * Redis: 200,000 events of 100,000 devices added through the backend. ClickHouse: a fresh database
 * per size; the backend creates its schema, then the events are generated on the server with
 * `INSERT INTO <db>.events SELECT … FROM numbers(N)` into the backend's own table (whatever the
 * backend maintains from it, such as materialized views, fills as in production): 100,000 distinct
 * device IPs, times over the last 30 days, error codes 0–9, Kafka coordinates over 8 partitions.
 * Every count is checked.
 *
 * Reading each event once: after the count timings, 1% of the events are inserted again (a replay),
 * and two analysis queries — all events, and events per device — are timed on the table as stored
 * and on `events_deduplicated` (FINAL), which must give exactly the original figures.
 * Settings: BENCH_COUNT_SIZES (comma-separated event counts). Writes bench/results/count.json.
 */
import {createClient as createClickHouseClient} from '@clickhouse/client'
import type {CountBackend, DeviceEvent} from '../src/backends/backend.js'
import {type BackendOptions, createBackend} from '../src/backends/registry.js'
import {formatInt, renderTable} from '../src/cli/output.js'
import {
  BenchError,
  deleteRedisKeys,
  dropClickHouseDatabases,
  formatMs,
  formatRatio,
  percentile,
  progress,
  runBenchmark,
  type ServiceEnv,
  uniqueName,
  verdict,
  withServices,
  writeResults,
} from './support.js'

const CLICKHOUSE_SIZES = (process.env.BENCH_COUNT_SIZES ?? '1000000,10000000').split(',').map(Number)
const DISTINCT_DEVICES = 100_000
const REDIS_EVENTS = 200_000
const SPAN_MS = 30 * 86_400_000
const SAMPLES = {redis: 2000, clickhouse: 200}
const WARMUP_CALLS = {redis: 50, clickhouse: 5}
/** Sampling of one configuration stops after this long, whatever the sample count. */
const SAMPLING_LIMIT_MS = 20_000
const INSERT_TIMEOUT_MS = 600_000
const REDIS_COUNT_TOLERANCE = 0.03

const TARGET_REDIS_P50_MS = 2
const TARGET_CLICKHOUSE_P50_MS = 100
const TARGET_CLICKHOUSE_GROWTH = 2

/** Analysis queries timed on the table as stored and through the deduplicated view. */
const ONCE_QUERIES = [
  // The condition holds for every event; without one, count() of a plain table is read from part metadata.
  {name: 'all events', sql: (from: string) => `SELECT count() AS n FROM ${from} WHERE error_code >= 0`},
  {name: 'events per device', sql: (from: string) => `SELECT sum(events) AS n FROM (SELECT device_ip, count() AS events FROM ${from} GROUP BY device_ip)`},
]
const ONCE_RUNS = 5
const REPLAYED_SHARE = 0.01
/** Reading each event once may cost this much more than reading the table as stored. */
const TARGET_ONCE_RATIO = 5

interface OnceCost {
  events: number
  query: string
  rawMs: number
  onceMs: number
  ratio: number
}

interface Latency {
  name: string
  events: number
  samples: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  meanMs: number
  count: number
  loadMs: number
}

/** Device i of the synthetic set: 10.x.y.z from an odd multiple of i, so every i < 100,000 is distinct. */
function deviceIp(i: number): string {
  const d = (i * 48_271) % DISTINCT_DEVICES
  return `10.${d >>> 16}.${(d >>> 8) & 255}.${d & 255}`
}

function backendOptions(env: ServiceEnv, names: {key?: string; database?: string}): BackendOptions {
  return {
    redisUrl: env.REDIS_URL,
    redisKey: names.key ?? 'unused',
    clickhouseUrl: env.CLICKHOUSE_URL,
    clickhouseUser: 'default',
    clickhousePassword: '',
    clickhouseDatabase: names.database ?? 'unused',
    requestTimeoutMs: 60_000,
  }
}

async function sampleCount(name: string, backend: CountBackend, events: number, kind: 'redis' | 'clickhouse', loadMs: number): Promise<Latency> {
  for (let i = 0; i < WARMUP_CALLS[kind]; i++) await backend.count()
  const latencies: number[] = []
  let count = Number.NaN
  const started = performance.now()
  while (latencies.length < SAMPLES[kind] && performance.now() - started < SAMPLING_LIMIT_MS) {
    const before = performance.now()
    count = await backend.count()
    latencies.push(performance.now() - before)
  }
  latencies.sort((a, b) => a - b)
  return {
    name,
    events,
    samples: latencies.length,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.at(-1) ?? Number.NaN,
    meanMs: latencies.reduce((sum, value) => sum + value, 0) / latencies.length,
    count,
    loadMs,
  }
}

async function redisLatency(env: ServiceEnv, key: string): Promise<Latency> {
  const backend = await createBackend('redis', backendOptions(env, {key}))
  try {
    await backend.connect()
    progress(`redis: adding ${formatInt(REDIS_EVENTS)} events of ${formatInt(DISTINCT_DEVICES)} devices`)
    const now = Date.now()
    const loadStarted = performance.now()
    for (let start = 0; start < REDIS_EVENTS; start += 10_000) {
      const events: DeviceEvent[] = []
      for (let i = start; i < start + 10_000; i++) events.push({timestampMs: now - ((i * 7919) % SPAN_MS), deviceIp: deviceIp(i), errorCode: i % 10})
      await (
        await backend.add(events)
      ).durable
    }
    await backend.flush()
    const loadMs = performance.now() - loadStarted
    progress(`redis: timing count()`)
    const result = await sampleCount('redis', backend, REDIS_EVENTS, 'redis', loadMs)
    if (Math.abs(result.count - DISTINCT_DEVICES) > REDIS_COUNT_TOLERANCE * DISTINCT_DEVICES)
      throw new BenchError(`redis counted ${result.count} devices, expected about ${DISTINCT_DEVICES}`)
    return result
  } finally {
    await backend.close()
  }
}

/** SQL that computes each insertable column of the events table from `number`. */
function columnExpression(name: string, type: string, nowMs: number): string {
  const timestampMs = `(${nowMs} - (number * 7919) % ${SPAN_MS})`
  const device = `((number * 48271) % ${DISTINCT_DEVICES})`
  if (name === 'timestamp_ms' && type === 'Int64') return `toInt64${timestampMs}`
  if (name === 'timestamp' && type.startsWith('DateTime64')) return `toDateTime64(${timestampMs} / 1000, 3, 'UTC')`
  if (name === 'device_ip' && type === 'String') {
    return `concat('10.', toString(intDiv(${device}, 65536)), '.', toString(intDiv(${device}, 256) % 256), '.', toString(${device} % 256))`
  }
  if (name === 'error_code' && type === 'Int8') return 'toInt8(number % 10)'
  if (name === 'kafka_topic' && type === 'String') return `'bench'`
  if (name === 'kafka_partition' && type === 'Int32') return 'toInt32(number % 8)'
  if (name === 'kafka_offset' && type === 'Int64') return 'toInt64(intDiv(number, 8))'
  throw new BenchError(`the events table has a column this benchmark cannot fill: ${name} ${type}`)
}

async function clickhouseLatency(env: ServiceEnv, database: string, events: number, onceCosts: OnceCost[]): Promise<Latency> {
  const backend = await createBackend('clickhouse', backendOptions(env, {database}))
  const client = createClickHouseClient({
    url: env.CLICKHOUSE_URL,
    request_timeout: INSERT_TIMEOUT_MS,
    // Progress headers keep the connection busy during a long INSERT … SELECT.
    clickhouse_settings: {send_progress_in_http_headers: 1, http_headers_progress_interval_ms: '10000'},
  })
  try {
    await backend.connect()
    const table = `${database}.events`
    const columns = await (
      await client.query({query: `DESCRIBE TABLE ${table}`, format: 'JSONEachRow'})
    ).json<{name: string; type: string; default_type: string}>()
    const insertable = columns.filter((column) => column.default_type === '')
    const nowMs = Date.now()
    const select = insertable.map((column) => columnExpression(column.name, column.type, nowMs)).join(', ')
    progress(`clickhouse: inserting ${formatInt(events)} events into ${table} (${insertable.map((column) => column.name).join(', ')})`)
    const loadStarted = performance.now()
    await client.command({query: `INSERT INTO ${table} (${insertable.map((column) => column.name).join(', ')}) SELECT ${select} FROM numbers(${events})`})
    const loadMs = performance.now() - loadStarted
    progress(`clickhouse: ${formatInt(events)} events in ${formatMs(loadMs)} ms; timing count()`)
    const result = await sampleCount(`clickhouse, ${formatInt(events)} events`, backend, events, 'clickhouse', loadMs)
    if (result.count !== DISTINCT_DEVICES) throw new BenchError(`clickhouse counted ${result.count} devices in ${events} events, expected ${DISTINCT_DEVICES}`)
    const replayed = Math.floor(events * REPLAYED_SHARE)
    progress(`clickhouse: replaying ${formatInt(replayed)} events; timing reads as stored and once each`)
    await client.command({query: `INSERT INTO ${table} (${insertable.map((column) => column.name).join(', ')}) SELECT ${select} FROM numbers(${replayed})`})
    const median = async (sql: string): Promise<{ms: number; n: number}> => {
      const times: number[] = []
      let n = Number.NaN
      for (let run = 0; run < ONCE_RUNS; run++) {
        const started = performance.now()
        const [row] = await (await client.query({query: sql, format: 'JSONEachRow'})).json<{n: string}>()
        times.push(performance.now() - started)
        n = Number(row.n)
      }
      return {
        ms: percentile(
          times.sort((a, b) => a - b),
          50,
        ),
        n,
      }
    }
    for (const query of ONCE_QUERIES) {
      const raw = await median(query.sql(table))
      const once = await median(query.sql(`${database}.events_deduplicated`))
      if (once.n !== events) throw new BenchError(`${query.name} through events_deduplicated gave ${once.n}, expected ${events}`)
      onceCosts.push({events, query: query.name, rawMs: raw.ms, onceMs: once.ms, ratio: once.ms / raw.ms})
    }
    return result
  } finally {
    await backend.close()
    await client.close()
  }
}

async function main(): Promise<void> {
  for (const size of CLICKHOUSE_SIZES) {
    if (!Number.isInteger(size) || size < DISTINCT_DEVICES)
      throw new BenchError(`BENCH_COUNT_SIZES: each size must be an integer of at least ${DISTINCT_DEVICES}, got ${size}`)
  }
  await withServices(async (env) => {
    const id = uniqueName('ipc_bench_count')
    const key = `ipc:bench:${id}`
    const results: Latency[] = []
    const onceCosts: OnceCost[] = []
    try {
      results.push(await redisLatency(env, key))
    } finally {
      await deleteRedisKeys(env.REDIS_URL, [key])
    }
    for (const size of CLICKHOUSE_SIZES) {
      const database = `${id}_${size}`
      try {
        results.push(await clickhouseLatency(env, database, size, onceCosts))
      } finally {
        await dropClickHouseDatabases(env.CLICKHOUSE_URL, [database])
      }
    }

    console.log(
      renderTable(
        ['backend', 'events stored', 'count() p50 ms', 'p99 ms', 'max ms', 'samples', 'devices counted'],
        results.map((r) => [r.name, formatInt(r.events), formatMs(r.p50Ms), formatMs(r.p99Ms), formatMs(r.maxMs), formatInt(r.samples), formatInt(r.count)]),
      ),
    )
    console.log(
      `sequential calls after ${WARMUP_CALLS.redis} (redis) / ${WARMUP_CALLS.clickhouse} (clickhouse) ` +
        `warm-up calls; clickhouse measured right after the insert, with background merges running`,
    )

    console.log(
      renderTable(
        ['events', 'query', 'as stored ms', 'once each ms', 'ratio'],
        onceCosts.map((cost) => [formatInt(cost.events), cost.query, formatMs(cost.rawMs), formatMs(cost.onceMs), formatRatio(cost.ratio)]),
      ),
    )
    console.log(`median of ${ONCE_RUNS} runs, after ${REPLAYED_SHARE * 100}% of the events were inserted again; "once each" reads events_deduplicated (FINAL)`)

    const [redis, ...clickhouse] = results
    const smallest = clickhouse[0]
    const largest = clickhouse.at(-1)
    const targets = [{name: `redis count() p50 ≤ ${TARGET_REDIS_P50_MS} ms`, pass: redis.p50Ms <= TARGET_REDIS_P50_MS, measured: `${formatMs(redis.p50Ms)} ms`}]
    if (largest) {
      targets.push({
        name: `clickhouse count() p50 ≤ ${TARGET_CLICKHOUSE_P50_MS} ms at ${formatInt(largest.events)} events`,
        pass: largest.p50Ms <= TARGET_CLICKHOUSE_P50_MS,
        measured: `${formatMs(largest.p50Ms)} ms`,
      })
    }
    if (largest && smallest && largest !== smallest) {
      const growth = largest.p50Ms / smallest.p50Ms
      targets.push({
        name: `clickhouse count() p50 at ${formatInt(largest.events)} ≤ ${TARGET_CLICKHOUSE_GROWTH}× at ${formatInt(smallest.events)} events`,
        pass: growth <= TARGET_CLICKHOUSE_GROWTH,
        measured: formatRatio(growth),
      })
    }
    const worstOnce = onceCosts.filter((cost) => cost.events === largest?.events).sort((a, b) => b.ratio - a.ratio)[0]
    if (worstOnce) {
      targets.push({
        name: `reading each event once ≤ ${TARGET_ONCE_RATIO}× reading as stored at ${formatInt(worstOnce.events)} events (${worstOnce.query})`,
        pass: worstOnce.ratio <= TARGET_ONCE_RATIO,
        measured: formatRatio(worstOnce.ratio),
      })
    }
    for (const target of targets) console.log(`${verdict(target.pass)}: ${target.name} (measured ${target.measured})`)
    writeResults('count', {distinctDevices: DISTINCT_DEVICES, samplingLimitMs: SAMPLING_LIMIT_MS, results, onceCosts, targets})
  })
}

runBenchmark('count', main)
