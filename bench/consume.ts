/**
 * Consumer throughput and memory: `ipc consume` into redis and into clickhouse, beside kcat (the C
 * client) and a bare kafkajs consumer reading the same topic, beside ClickHouse's own Kafka table
 * engine filling a MergeTree, and beside the naive design (one awaited PFADD / INSERT per event).
 * Every reader's row also shows the CPU the services it drives (broker, Redis, ClickHouse) spent.
 *
 *   node dist/bench/consume.js
 *
 * One data set per run: a 16-partition topic with 500,000 events of 10,000 devices, produced once
 * with `ipc produce`. Every `ipc consume` run reads all of it in a fresh consumer group into a fresh
 * Redis key / ClickHouse database, and its result is checked (events processed, none invalid, the
 * device count) before its speed counts. Settings: BENCH_CONSUME_EVENTS, BENCH_CONSUME_DEVICES,
 * BENCH_CONSUME_ROUNDS, BENCH_CONSUME_PRODUCE_BATCH. Writes bench/results/consume.json.
 */
import {createClient as createClickHouseClient} from '@clickhouse/client'
import {createClient as createRedisClient} from '@redis/client'
import type {DeviceEvent} from '../src/backends/backend.js'
import {createBackend} from '../src/backends/registry.js'
import {parseEvent} from '../src/events/event.js'
import {EventGenerator} from '../src/loadgen/generator.js'
import {formatInt, renderTable} from '../src/cli/output.js'
import {type EngineRun, runKafkaEngine} from './clickhouse-kafka-engine.js'
import {
  BenchError,
  createTopic,
  deleteRedisKeys,
  dropClickHouseDatabases,
  envInteger,
  formatMb,
  formatMicros,
  formatMs,
  formatRatio,
  idleServiceCpu,
  measureServiceCpu,
  median,
  medianOf,
  microsPerEvent,
  produceEvents,
  progress,
  runBenchmark,
  runChild,
  runIpcJson,
  type ServiceEnv,
  type ServiceName,
  topicOffsets,
  uniqueName,
  verdict,
  waitForClickHouseMerges,
  withServices,
  writeResults,
} from './support.js'

const EVENTS = envInteger('BENCH_CONSUME_EVENTS', 500_000)
const DEVICES = envInteger('BENCH_CONSUME_DEVICES', 10_000)
const ROUNDS = envInteger('BENCH_CONSUME_ROUNDS', 3)
/**
 * Events per `ipc produce` send request when writing the data set. The dev broker answers a fetch with
 * one record batch per partition, so this also sets the consumer's batch size: 2000 / 16 ≈ 125 events.
 */
const PRODUCE_BATCH = envInteger('BENCH_CONSUME_PRODUCE_BATCH', 2000)
const PARTITIONS = 16
/** The worker rows: `ipc consume --workers WORKERS`, beside the single-worker rows. */
const WORKERS = envInteger('BENCH_CONSUME_WORKERS', 2)
const SEED = 20_241_122
const KCAT_ROUNDS = 5
/** Each round's naive references stop after this many events or this long, whichever comes first. */
const NAIVE_MAX_EVENTS = {redis: 5000, clickhouse: 1000}
const NAIVE_MAX_MS = 5000
const CONSUME_TIMEOUT_MS = 180_000
/** Redis counts with a HyperLogLog (standard error 0.81%): accept a count within this share. */
const REDIS_COUNT_TOLERANCE = 0.03

const TARGET_RATIO_TO_KCAT = {redis: 0.35, clickhouse: 0.25}
const TARGET_RATIO_TO_NAIVE = 30
/** Peak RSS at the default flags, either backend. */
const TARGET_PEAK_RSS_MB = 150
/** The memory may cost at most 10% of the rate: against the same runs with V8's own heap growth. */
const TARGET_HEAP_RATE_SHARE = 0.9
const TARGET_RATIO_TO_ENGINE = 1
/**
 * ipc's own CPU per event (its CPU minus the bare kafkajs consumer's, per round): half of what it was
 * when these targets were set (2.9 µs into redis, 2.5 µs into clickhouse).
 */
const TARGET_OWN_CPU_MICROS = {redis: 1.45, clickhouse: 1.25}
/** The other fetch size's rows: ipc consume with these fetch limits (kafkajs's own defaults) beside ipc's defaults, memory against rate. */
const OTHER_FETCH = {
  fetchMaxBytes: envInteger('BENCH_CONSUME_FETCH_MAX_BYTES', 10 * 1024 * 1024),
  maxPartitionFetchBytes: envInteger('BENCH_CONSUME_PARTITION_FETCH_BYTES', 1024 * 1024),
}
const OTHER_FETCH_ARGS = ['--fetch-max-bytes', String(OTHER_FETCH.fetchMaxBytes), '--max-partition-fetch-bytes', String(OTHER_FETCH.maxPartitionFetchBytes)]
const OTHER_FETCH_LABEL = `fetch ≤ ${OTHER_FETCH.fetchMaxBytes / 1024} KiB, ${OTHER_FETCH.maxPartitionFetchBytes / 1024} KiB per partition`

/** The heap rows: ipc consume with V8's own heap growth beside ipc's default, memory against rate and CPU. */
const V8_HEAP_ARGS = ['--heap-growing-percent', '0']
const V8_HEAP_LABEL = "V8's own heap growth (--heap-growing-percent 0)"

type BackendName = 'redis' | 'clickhouse'
const BACKENDS: readonly BackendName[] = ['redis', 'clickhouse']

/** A row of `ipc consume` runs: its names' tag, its label, where its runs go, its flags and what its progress line shows. */
interface ConsumeRow {
  tag: string
  label: string
  into: Record<BackendName, ConsumeRun[]>
  workers?: number
  args?: string[]
  detail?: (run: ConsumeRun) => string
}

const peakRss = (run: ConsumeRun): string => `peak RSS ${formatMb(run.peakRssKb)}`
const joinAndPeak = (run: ConsumeRun): string => `join ${formatMs(run.joinMs)} ms, ${peakRss(run)}`
const joinAndDevices = (run: ConsumeRun): string => `${joinAndPeak(run)}, ${formatInt(run.totalDevices)} devices`

interface ConsumeJson {
  reason: string
  totalDevices?: number
  joinMs?: number
  steadyEventsPerSecond: number
  stats: {processed: number; valid: number; invalid: number}
}

interface ConsumeRun {
  eventsPerSecond: number
  joinMs: number
  wallMs: number
  peakRssKb?: number
  /** CPU time of the whole process (start-up and group join included) per event. */
  cpuMicrosPerEvent?: number
  /** CPU time of the services the reader drives (broker, and Redis or ClickHouse) during its run, per event. */
  serverCpuMicrosPerEvent?: number
  totalDevices: number
}

interface NaiveRun {
  eventsPerSecond: number
  events: number
  serverCpuMicrosPerEvent?: number
}

/** A reader's rate and CPU per event, its own and the services'. */
interface ReaderRun {
  eventsPerSecond: number
  cpuMicrosPerEvent?: number
  serverCpuMicrosPerEvent?: number
}

/** The services a reader drives: the broker, and the backend it writes to. */
function servicesOf(backend?: BackendName): ServiceName[] {
  return backend === undefined ? ['kafka'] : ['kafka', backend]
}

interface KcatTimings {
  /** `-c 1`: start, connect, metadata, first fetch. */
  firstMessageMs: number[]
  /** `-c N`: exits on the N-th message. */
  allMessagesMs: number[]
  /** `-e`: exits once every partition reported its end (adds an end-of-partition fetch). */
  untilEndMs: number[]
  /** CPU time of the broker during each of those runs (null without its pid file). */
  brokerCpuMs: Record<KcatVariant, Array<number | undefined>>
}

type KcatVariant = 'firstMessageMs' | 'allMessagesMs' | 'untilEndMs'

async function produceDataSet(topic: string): Promise<number> {
  progress(`producing ${formatInt(EVENTS)} events of ${formatInt(DEVICES)} devices to ${topic} (${PARTITIONS} partitions, --batch ${PRODUCE_BATCH})`)
  const json = await produceEvents(topic, {events: EVENTS, devices: DEVICES, batch: PRODUCE_BATCH, seed: SEED})
  return json.distinctDevices
}

/** Checks that the broker still holds every event (the dev broker drops the oldest beyond ~5 MB per partition). */
async function checkTopicHoldsAll(env: ServiceEnv, topic: string): Promise<void> {
  const offsets = await topicOffsets(env.KAFKA_BROKERS, topic)
  const held = offsets.reduce((sum, partition) => sum + partition.high - partition.low, 0)
  if (held !== EVENTS || offsets.some((partition) => partition.low > 0)) {
    throw new BenchError(`topic ${topic} holds ${held} events (oldest offsets ${offsets.map((partition) => partition.low).join(',')}), expected all ${EVENTS}`)
  }
}

async function timeKcat(env: ServiceEnv, topic: string): Promise<KcatTimings> {
  const timings: KcatTimings = {
    firstMessageMs: [],
    allMessagesMs: [],
    untilEndMs: [],
    brokerCpuMs: {firstMessageMs: [], allMessagesMs: [], untilEndMs: []},
  }
  const base = ['-C', '-b', env.KAFKA_BROKERS, '-t', topic, '-o', 'beginning', '-q']
  const variants: Array<[KcatVariant, string[]]> = [
    ['firstMessageMs', ['-c', '1']],
    ['allMessagesMs', ['-c', String(EVENTS)]],
    ['untilEndMs', ['-e']],
  ]
  for (let round = 0; round < KCAT_ROUNDS; round++) {
    for (const [into, extra] of variants) {
      const stopBrokerCpu = await measureServiceCpu(servicesOf())
      const result = await runChild('kcat', [...base, ...extra], {timeoutMs: 60_000, stdout: 'discard'})
      if (result.code !== 0) throw new BenchError(`kcat ${extra.join(' ')} exited with ${result.code}: ${result.stderr.slice(-500)}`)
      timings.brokerCpuMs[into].push(await stopBrokerCpu())
      timings[into].push(result.wallMs)
    }
  }
  return timings
}

/** Throws unless `counted` is the number of devices: exactly for clickhouse, within the HyperLogLog's error for redis. */
function checkDeviceCount(what: string, backend: BackendName, counted: number | undefined, distinctDevices: number): asserts counted is number {
  const countOk =
    counted !== undefined &&
    (backend === 'clickhouse' ? counted === distinctDevices : Math.abs(counted - distinctDevices) <= REDIS_COUNT_TOLERANCE * distinctDevices)
  if (!countOk) throw new BenchError(`${what} counted ${counted} devices, expected ${distinctDevices}`)
}

async function consumeOnce(
  topic: string,
  backend: BackendName,
  distinctDevices: number,
  names: {key: string; database: string},
  workers = 1,
  extraArgs: readonly string[] = [],
): Promise<ConsumeRun> {
  const stopServerCpu = await measureServiceCpu(servicesOf(backend))
  const {json, child} = await runIpcJson<ConsumeJson>(
    [
      'consume',
      '--topic',
      topic,
      '--backend',
      backend,
      '--group',
      uniqueName('ipc_bench_group'),
      '--from-beginning',
      '--until-idle',
      '2s',
      '--json',
      '--report-interval',
      '1h',
      '--redis-key',
      names.key,
      '--clickhouse-database',
      names.database,
      '--workers',
      String(workers),
      ...extraArgs,
    ],
    {timeoutMs: CONSUME_TIMEOUT_MS, measureResources: true},
  )
  const serverCpuMs = await stopServerCpu()
  const {processed, invalid} = json.stats ?? {}
  if (processed !== EVENTS || invalid !== 0)
    throw new BenchError(`ipc consume → ${backend} processed ${processed} events (${invalid} invalid), expected ${EVENTS} valid`)
  const counted = json.totalDevices
  checkDeviceCount(`ipc consume → ${backend}`, backend, counted, distinctDevices)
  if (!(json.steadyEventsPerSecond > 0)) throw new BenchError(`ipc consume → ${backend} reported no rate`)
  return {
    eventsPerSecond: json.steadyEventsPerSecond,
    joinMs: json.joinMs ?? Number.NaN,
    wallMs: child.wallMs,
    peakRssKb: child.peakRssKb,
    cpuMicrosPerEvent: microsPerEvent(child.cpuMs, EVENTS),
    serverCpuMicrosPerEvent: microsPerEvent(serverCpuMs, EVENTS),
    totalDevices: counted,
  }
}

/**
 * The Kafka client alone: bench/bare-consumer.ts (kafkajs eachBatch + JSON.parse, nothing stored),
 * with kafkajs's record batch decoder or, `ipcDecoder`, with ipc's.
 */
async function bareConsumer(env: ServiceEnv, topic: string, ipcDecoder = false): Promise<ReaderRun> {
  const stopBrokerCpu = await measureServiceCpu(servicesOf())
  const args = ['dist/bench/bare-consumer.js', env.KAFKA_BROKERS, topic, String(EVENTS), ...(ipcDecoder ? ['ipc-decoder'] : [])]
  const child = await runChild(process.execPath, args, {
    timeoutMs: CONSUME_TIMEOUT_MS,
    measureResources: true,
  })
  const brokerCpuMs = await stopBrokerCpu()
  if (child.code !== 0) throw new BenchError(`bare consumer exited with ${child.code}: ${child.stderr.slice(-1000)}`)
  const json = JSON.parse(child.stdout) as {messages: number; parsedFields: number; steadyEventsPerSecond: number}
  if (json.messages !== EVENTS || json.parsedFields !== EVENTS)
    throw new BenchError(`bare consumer read ${json.messages} messages (${json.parsedFields} parsed), expected ${EVENTS}`)
  return {
    eventsPerSecond: json.steadyEventsPerSecond,
    cpuMicrosPerEvent: microsPerEvent(child.cpuMs, EVENTS),
    serverCpuMicrosPerEvent: microsPerEvent(brokerCpuMs, EVENTS),
  }
}

/** The first events of the data set again (same seed, devices and shapes), as Kafka message values. */
function sampleMessages(count: number): Buffer[] {
  const generator = new EventGenerator({numDevices: DEVICES, seed: SEED})
  return Array.from({length: count}, () => Buffer.from(generator.next().value))
}

/** Events per batch the dev broker hands the consumer here: the producer's send size over the partitions. */
const CONSUMER_BATCH = Math.max(1, Math.round(PRODUCE_BATCH / PARTITIONS))

/**
 * The consumer's own work without Kafka: the same events, already in memory as message values, go
 * through `parseEvent` and the backend's `add()` in the consumer's batch size, then `flush()`; the
 * clock runs from the first parse to the last durable receipt. No Kafka client can make
 * `ipc consume` faster than this, so it bounds what replacing kafkajs could gain. Events/s, and the
 * backend service's CPU over the same span.
 */
async function withoutKafka(
  env: ServiceEnv,
  backendName: BackendName,
  messages: readonly Buffer[],
  distinctDevices: number,
  names: {key: string; database: string},
): Promise<ReaderRun> {
  const backend = await createBackend(backendName, {
    redisUrl: env.REDIS_URL,
    redisKey: names.key,
    clickhouseUrl: env.CLICKHOUSE_URL,
    clickhouseUser: 'default',
    clickhousePassword: '',
    clickhouseDatabase: names.database,
  })
  await backend.connect()
  try {
    const stopServerCpu = await measureServiceCpu([backendName])
    const started = performance.now()
    const receipts: Array<Promise<void>> = []
    for (let start = 0; start < messages.length; start += CONSUMER_BATCH) {
      const events: DeviceEvent[] = []
      for (let index = start; index < Math.min(messages.length, start + CONSUMER_BATCH); index++) {
        const result = parseEvent(messages[index])
        if (!result.ok) throw new BenchError(`event rejected: ${result.detail}`)
        events.push(result.event)
      }
      receipts.push((await backend.add(events)).durable)
    }
    await backend.flush()
    await Promise.all(receipts)
    const rate = (messages.length * 1000) / (performance.now() - started)
    const serverCpuMs = await stopServerCpu()
    checkDeviceCount(`${backendName} without Kafka`, backendName, await backend.count(), distinctDevices)
    return {eventsPerSecond: rate, serverCpuMicrosPerEvent: microsPerEvent(serverCpuMs, messages.length)}
  } finally {
    await backend.close()
  }
}

/** The original design: parse each event, then one awaited PFADD per event. Events/s. */
async function naiveRedis(env: ServiceEnv, key: string): Promise<NaiveRun> {
  const client = createRedisClient({url: env.REDIS_URL})
  await client.connect()
  try {
    const messages = sampleMessages(NAIVE_MAX_EVENTS.redis)
    const stopServerCpu = await measureServiceCpu(['redis'])
    const started = performance.now()
    let done = 0
    for (const message of messages) {
      const result = parseEvent(message)
      if (!result.ok) throw new BenchError(`sample event rejected: ${result.detail}`)
      await client.pfAdd(key, result.event.deviceIp)
      done++
      if (performance.now() - started > NAIVE_MAX_MS) break
    }
    const elapsedMs = performance.now() - started
    const serverCpuMs = await stopServerCpu()
    await client.del(key)
    return {eventsPerSecond: (done * 1000) / elapsedMs, events: done, serverCpuMicrosPerEvent: microsPerEvent(serverCpuMs, done)}
  } finally {
    await client.close()
  }
}

/** The original design: parse each event, then one awaited single-row INSERT per event. Events/s. */
async function naiveClickHouse(env: ServiceEnv, database: string): Promise<NaiveRun> {
  const client = createClickHouseClient({url: env.CLICKHOUSE_URL})
  const table = `${database}.naive_events`
  try {
    await client.command({query: `CREATE DATABASE IF NOT EXISTS ${database}`})
    await client.command({query: `CREATE TABLE ${table} (timestamp_ms Int64, device_ip String, error_code Int8) ENGINE = MergeTree ORDER BY device_ip`})
    const messages = sampleMessages(NAIVE_MAX_EVENTS.clickhouse)
    const stopServerCpu = await measureServiceCpu(['clickhouse'])
    const started = performance.now()
    let done = 0
    for (const message of messages) {
      const result = parseEvent(message)
      if (!result.ok) throw new BenchError(`sample event rejected: ${result.detail}`)
      const {timestampMs, deviceIp, errorCode} = result.event
      await client.insert({table, values: [{timestamp_ms: timestampMs, device_ip: deviceIp, error_code: errorCode}], format: 'JSONEachRow'})
      done++
      if (performance.now() - started > NAIVE_MAX_MS) break
    }
    const elapsedMs = performance.now() - started
    const serverCpuMs = await stopServerCpu()
    const rows = await (await client.query({query: `SELECT count() AS n FROM ${table}`, format: 'JSONEachRow'})).json<{n: string}>()
    if (Number(rows[0]?.n) !== done) throw new BenchError(`naive ClickHouse table holds ${rows[0]?.n} rows, expected ${done}`)
    return {eventsPerSecond: (done * 1000) / elapsedMs, events: done, serverCpuMicrosPerEvent: microsPerEvent(serverCpuMs, done)}
  } finally {
    await client.command({query: `DROP DATABASE IF EXISTS ${database}`}).catch(() => undefined)
    await client.close()
  }
}

interface BackendSummary {
  /** Median over the rounds, as every rate here. */
  eventsPerSecond: number
  bestEventsPerSecond: number
  joinMs: number
  /** Highest peak RSS of the rounds. */
  peakRssKb: number
  cpuMicrosPerEvent?: number
  serverCpuMicrosPerEvent?: number
  naiveEventsPerSecond: number
  naiveServerCpuMicrosPerEvent?: number
  ratioToKcat: number
  ratioToNaive: number
  runs: ConsumeRun[]
  naiveRuns: NaiveRun[]
}

function summarise(runs: ConsumeRun[], naiveRuns: NaiveRun[], kcatRate: number): BackendSummary {
  const eventsPerSecond = median(runs.map((run) => run.eventsPerSecond))
  const naiveEventsPerSecond = median(naiveRuns.map((run) => run.eventsPerSecond))
  return {
    eventsPerSecond,
    bestEventsPerSecond: Math.max(...runs.map((run) => run.eventsPerSecond)),
    joinMs: median(runs.map((run) => run.joinMs)),
    peakRssKb: Math.max(...runs.map((run) => run.peakRssKb ?? Number.NaN)),
    cpuMicrosPerEvent: medianOf(runs.map((run) => run.cpuMicrosPerEvent)),
    serverCpuMicrosPerEvent: medianOf(runs.map((run) => run.serverCpuMicrosPerEvent)),
    naiveEventsPerSecond,
    naiveServerCpuMicrosPerEvent: medianOf(naiveRuns.map((run) => run.serverCpuMicrosPerEvent)),
    ratioToKcat: eventsPerSecond / kcatRate,
    // Each round's pair, then the median: steadier than a ratio of medians on a busy machine.
    ratioToNaive: median(runs.map((run, index) => run.eventsPerSecond / naiveRuns[index].eventsPerSecond)),
    runs,
    naiveRuns,
  }
}

/** A table row of `ipc consume` runs: rate, ratios, CPU, join and peak RSS. */
function consumeRow(label: string, s: BackendSummary): string[] {
  return [
    label,
    formatInt(s.eventsPerSecond),
    formatRatio(s.ratioToKcat),
    formatRatio(s.ratioToNaive),
    formatMicros(s.cpuMicrosPerEvent),
    formatMicros(s.serverCpuMicrosPerEvent),
    formatMs(s.joinMs),
    formatMb(s.peakRssKb),
  ]
}

function formatCpuRate(msPerSecond: number | undefined): string {
  return msPerSecond === undefined ? '-' : `${msPerSecond.toFixed(0)} ms CPU/s`
}

/** The rounds' engine runs: medians (peak RSS: the highest of the rounds). */
interface EngineSummary extends Omit<EngineRun, 'rssBeforeKb'> {
  ratioToKcat: number
  /** `ipc consume → clickhouse` over the engine, each round's pair, then the median. */
  clickhouseRatio: number
  runs: EngineRun[]
}

function summariseEngine(runs: EngineRun[], clickhouseRuns: ConsumeRun[], kcatRate: number): EngineSummary {
  const eventsPerSecond = median(runs.map((run) => run.eventsPerSecond))
  const rssKb = runs.flatMap((run) => (run.peakRssKb === undefined ? [] : [run.peakRssKb]))
  return {
    eventsPerSecond,
    elapsedMs: median(runs.map((run) => run.elapsedMs)),
    firstRowMs: median(runs.map((run) => run.firstRowMs)),
    cpuMicrosPerEvent: medianOf(runs.map((run) => run.cpuMicrosPerEvent)),
    serverCpuMicrosPerEvent: medianOf(runs.map((run) => run.serverCpuMicrosPerEvent)),
    peakRssKb: rssKb.length === 0 ? undefined : Math.max(...rssKb),
    ratioToKcat: eventsPerSecond / kcatRate,
    clickhouseRatio: median(runs.map((run, index) => clickhouseRuns[index].eventsPerSecond / run.eventsPerSecond)),
    runs,
  }
}

async function main(): Promise<void> {
  await withServices(async (env) => {
    const id = uniqueName('ipc_bench_consume')
    const topic = id
    await createTopic(topic, PARTITIONS)
    const distinctDevices = await produceDataSet(topic)
    await checkTopicHoldsAll(env, topic)
    const idleCpu = await idleServiceCpu(['kafka', 'redis', 'clickhouse'])

    progress(`kcat: ${KCAT_ROUNDS} rounds of reading the topic to /dev/null`)
    const kcat = await timeKcat(env, topic)
    const kcatFirstMs = median(kcat.firstMessageMs)
    const kcatAllMs = median(kcat.allMessagesMs)
    const kcatEndMs = median(kcat.untilEndMs)
    const kcatRate = (EVENTS * 1000) / Math.max(1, kcatAllMs - kcatFirstMs)
    const kcatServerCpu = medianOf(kcat.brokerCpuMs.allMessagesMs.map((cpuMs) => microsPerEvent(cpuMs, EVENTS)))
    const kcatEndServerCpu = medianOf(kcat.brokerCpuMs.untilEndMs.map((cpuMs) => microsPerEvent(cpuMs, EVENTS)))

    const runs: Record<BackendName, ConsumeRun[]> = {redis: [], clickhouse: []}
    const workerRuns: Record<BackendName, ConsumeRun[]> = {redis: [], clickhouse: []}
    const otherFetchRuns: Record<BackendName, ConsumeRun[]> = {redis: [], clickhouse: []}
    const v8HeapRuns: Record<BackendName, ConsumeRun[]> = {redis: [], clickhouse: []}
    const naiveRuns: Record<BackendName, NaiveRun[]> = {redis: [], clickhouse: []}
    const bareRuns: ReaderRun[] = []
    const bareIpcDecoderRuns: ReaderRun[] = []
    const engineRuns: EngineRun[] = []
    const withoutKafkaRuns: Record<BackendName, ReaderRun[]> = {redis: [], clickhouse: []}
    const messages = sampleMessages(EVENTS)
    const keys: string[] = []
    const databases: string[] = []
    try {
      /** One `ipc consume` run per backend for a row, into a key and database of its own. */
      const runEachBackend = async (round: number, row: ConsumeRow): Promise<void> => {
        for (const backend of BACKENDS) {
          const suffix = row.tag === '' ? `${round}` : `${row.tag}:${round}`
          const names = {key: `ipc:bench:${id}:${suffix}`, database: `${id}_${suffix.replace(':', '_')}`}
          keys.push(names.key)
          databases.push(names.database)
          const workers = row.workers ?? 1
          progress(`round ${round}/${ROUNDS}: ipc consume${workers > 1 ? ` --workers ${workers}` : ''} → ${backend}${row.label}`)
          await waitForClickHouseMerges(env.CLICKHOUSE_URL)
          const result = await consumeOnce(topic, backend, distinctDevices, names, workers, row.args)
          row.into[backend].push(result)
          progress(`  ${formatInt(result.eventsPerSecond)} events/s, ${(row.detail ?? peakRss)(result)}`)
        }
      }
      // Every round runs everything once, so a busy moment on the machine does not favour one.
      for (let round = 1; round <= ROUNDS; round++) {
        await runEachBackend(round, {tag: '', label: '', into: runs, detail: joinAndDevices})
        await runEachBackend(round, {tag: 'fetch', label: `, ${OTHER_FETCH_LABEL}`, into: otherFetchRuns, args: OTHER_FETCH_ARGS})
        await runEachBackend(round, {tag: 'v8heap', label: `, ${V8_HEAP_LABEL}`, into: v8HeapRuns, args: V8_HEAP_ARGS})
        await runEachBackend(round, {tag: 'workers', label: '', into: workerRuns, workers: WORKERS, detail: joinAndPeak})
        progress(`round ${round}/${ROUNDS}: ClickHouse Kafka engine → MergeTree`)
        const engineDatabase = `${id}_engine_${round}`
        databases.push(engineDatabase)
        await waitForClickHouseMerges(env.CLICKHOUSE_URL)
        const engine = await runKafkaEngine(env, {
          topic,
          database: engineDatabase,
          group: uniqueName('ipc_bench_engine_group'),
          events: EVENTS,
          distinctDevices,
          timeoutMs: CONSUME_TIMEOUT_MS,
        })
        engineRuns.push(engine)
        progress(
          `  ${formatInt(engine.eventsPerSecond)} events/s (first rows after ${formatMs(engine.firstRowMs)} ms, all after ${formatMs(engine.elapsedMs)} ms)`,
        )
        progress(`round ${round}/${ROUNDS}: bare kafkajs consumer`)
        await waitForClickHouseMerges(env.CLICKHOUSE_URL)
        const bare = await bareConsumer(env, topic)
        bareRuns.push(bare)
        progress(`  ${formatInt(bare.eventsPerSecond)} events/s`)
        progress(`round ${round}/${ROUNDS}: bare kafkajs consumer with ipc's record batch decoder`)
        const bareIpcDecoder = await bareConsumer(env, topic, true)
        bareIpcDecoderRuns.push(bareIpcDecoder)
        progress(`  ${formatInt(bareIpcDecoder.eventsPerSecond)} events/s`)
        progress(`round ${round}/${ROUNDS}: the consumer's work without Kafka`)
        for (const backend of BACKENDS) {
          const names = {key: `ipc:bench:${id}:memory:${round}`, database: `${id}_memory_${round}`}
          keys.push(names.key)
          databases.push(names.database)
          withoutKafkaRuns[backend].push(await withoutKafka(env, backend, messages, distinctDevices, names))
        }
        progress(
          `  redis ${formatInt(withoutKafkaRuns.redis.at(-1)?.eventsPerSecond ?? Number.NaN)} events/s, clickhouse ` +
            `${formatInt(withoutKafkaRuns.clickhouse.at(-1)?.eventsPerSecond ?? Number.NaN)} events/s`,
        )
        progress(`round ${round}/${ROUNDS}: naive references (up to ${NAIVE_MAX_MS / 1000} s each)`)
        const naive = {redis: await naiveRedis(env, `ipc:bench:${id}:naive`), clickhouse: await naiveClickHouse(env, `${id}_naive`)}
        for (const backend of BACKENDS) naiveRuns[backend].push(naive[backend])
        progress(
          `  PFADD per event ${formatInt(naive.redis.eventsPerSecond)} events/s, INSERT per event ${formatInt(naive.clickhouse.eventsPerSecond)} events/s`,
        )
      }
    } finally {
      await deleteRedisKeys(env.REDIS_URL, keys)
      await dropClickHouseDatabases(env.CLICKHOUSE_URL, databases)
    }

    const summary = {redis: summarise(runs.redis, naiveRuns.redis, kcatRate), clickhouse: summarise(runs.clickhouse, naiveRuns.clickhouse, kcatRate)}
    const engine = summariseEngine(engineRuns, runs.clickhouse, kcatRate)
    const bareRate = median(bareRuns.map((run) => run.eventsPerSecond))
    const bareCpu = medianOf(bareRuns.map((run) => run.cpuMicrosPerEvent))
    const bareServerCpu = medianOf(bareRuns.map((run) => run.serverCpuMicrosPerEvent))
    const bareIpcDecoderRate = median(bareIpcDecoderRuns.map((run) => run.eventsPerSecond))
    const kcatEndRate = (EVENTS * 1000) / kcatEndMs
    const rows: string[][] = [
      ['kcat -C -c N, minus kcat -c 1 (reference)', formatInt(kcatRate), '1.00×', '-', '-', formatMicros(kcatServerCpu), '-', '-'],
      ['kcat -C -e, whole process', formatInt(kcatEndRate), formatRatio(kcatEndRate / kcatRate), '-', '-', formatMicros(kcatEndServerCpu), '-', '-'],
      [
        'bare kafkajs: eachBatch + JSON.parse, nothing stored',
        formatInt(bareRate),
        formatRatio(bareRate / kcatRate),
        '-',
        formatMicros(bareCpu),
        formatMicros(bareServerCpu),
        '-',
        '-',
      ],
      [
        "bare kafkajs with ipc's record batch decoder",
        formatInt(bareIpcDecoderRate),
        formatRatio(bareIpcDecoderRate / kcatRate),
        '-',
        formatMicros(medianOf(bareIpcDecoderRuns.map((run) => run.cpuMicrosPerEvent))),
        formatMicros(medianOf(bareIpcDecoderRuns.map((run) => run.serverCpuMicrosPerEvent))),
        '-',
        '-',
      ],
    ]
    for (const backend of BACKENDS) rows.push(consumeRow(`ipc consume → ${backend}`, summary[backend]))
    const otherFetchSummary = {
      redis: summarise(otherFetchRuns.redis, naiveRuns.redis, kcatRate),
      clickhouse: summarise(otherFetchRuns.clickhouse, naiveRuns.clickhouse, kcatRate),
    }
    for (const backend of BACKENDS) rows.push(consumeRow(`ipc consume → ${backend}, ${OTHER_FETCH_LABEL}`, otherFetchSummary[backend]))
    const v8HeapSummary = {
      redis: summarise(v8HeapRuns.redis, naiveRuns.redis, kcatRate),
      clickhouse: summarise(v8HeapRuns.clickhouse, naiveRuns.clickhouse, kcatRate),
    }
    for (const backend of BACKENDS) rows.push(consumeRow(`ipc consume → ${backend}, ${V8_HEAP_LABEL}`, v8HeapSummary[backend]))
    const workerSummary = {
      redis: summarise(workerRuns.redis, naiveRuns.redis, kcatRate),
      clickhouse: summarise(workerRuns.clickhouse, naiveRuns.clickhouse, kcatRate),
    }
    for (const backend of BACKENDS) rows.push(consumeRow(`ipc consume --workers ${WORKERS} → ${backend}`, workerSummary[backend]))
    // ipc's own work: its CPU per event minus the bare kafkajs consumer's, per round, then the median.
    const ownCpu = Object.fromEntries(
      BACKENDS.map((backend) => [
        backend,
        medianOf(runs[backend].map((run, index) => (run.cpuMicrosPerEvent ?? Number.NaN) - (bareRuns[index]?.cpuMicrosPerEvent ?? Number.NaN))),
      ]),
    ) as Record<BackendName, number | undefined>
    // The same with the client's decoding as ipc runs it: what ipc's own path (parse, validate, write) costs.
    const ownPathCpu = Object.fromEntries(
      BACKENDS.map((backend) => [
        backend,
        medianOf(runs[backend].map((run, index) => (run.cpuMicrosPerEvent ?? Number.NaN) - (bareIpcDecoderRuns[index]?.cpuMicrosPerEvent ?? Number.NaN))),
      ]),
    ) as Record<BackendName, number | undefined>
    rows.push([
      'ClickHouse Kafka engine → MergeTree (server side)',
      formatInt(engine.eventsPerSecond),
      formatRatio(engine.ratioToKcat),
      '-',
      formatMicros(engine.cpuMicrosPerEvent),
      formatMicros(engine.serverCpuMicrosPerEvent),
      '-',
      formatMb(engine.peakRssKb),
    ])
    const withoutKafkaSummary = Object.fromEntries(
      BACKENDS.map((backend) => {
        const rate = median(withoutKafkaRuns[backend].map((run) => run.eventsPerSecond))
        const serverCpu = medianOf(withoutKafkaRuns[backend].map((run) => run.serverCpuMicrosPerEvent))
        return [backend, {eventsPerSecond: rate, serverCpuMicrosPerEvent: serverCpu, ratioToKcat: rate / kcatRate, runs: withoutKafkaRuns[backend]}]
      }),
    ) as Record<BackendName, {eventsPerSecond: number; serverCpuMicrosPerEvent?: number; ratioToKcat: number; runs: ReaderRun[]}>
    for (const backend of BACKENDS) {
      const {eventsPerSecond, serverCpuMicrosPerEvent, ratioToKcat} = withoutKafkaSummary[backend]
      rows.push([
        `ipc without Kafka → ${backend}: parseEvent + add() from memory`,
        formatInt(eventsPerSecond),
        formatRatio(ratioToKcat),
        '-',
        '-',
        formatMicros(serverCpuMicrosPerEvent),
        '-',
        '-',
      ])
    }
    for (const backend of BACKENDS) {
      const s = summary[backend]
      const events = median(s.naiveRuns.map((run) => run.events))
      rows.push([
        `naive: one ${backend === 'redis' ? 'PFADD' : 'INSERT'} per event (~${formatInt(events)} events)`,
        formatInt(s.naiveEventsPerSecond),
        formatRatio(s.naiveEventsPerSecond / kcatRate),
        '1.00×',
        '-',
        formatMicros(s.naiveServerCpuMicrosPerEvent),
        '-',
        '-',
      ])
    }
    console.log(renderTable(['reader', 'events/s', 'vs kcat', 'vs naive', 'CPU µs/event', 'server CPU µs/event', 'group join ms', 'peak RSS'], rows))
    console.log(
      `data: ${formatInt(EVENTS)} events of ${formatInt(distinctDevices)} devices, ${PARTITIONS} partitions, produced with --batch ${PRODUCE_BATCH}; ` +
        `median of ${ROUNDS} rounds; ipc and bare kafkajs: events/s from first to last event (group join ` +
        `apart), CPU of the whole process per event; kcat: median of ${KCAT_ROUNDS} runs ` +
        `(-c N ${formatMs(kcatAllMs)} ms, -c 1 ${formatMs(kcatFirstMs)} ms, -e ${formatMs(kcatEndMs)} ms); every ipc run's count was checked`,
    )
    console.log(
      `server CPU: user + system time of the services the reader drives, during its run (/proc/<pid>/stat), per event: the broker ` +
        `(kcat: during -c N and -e), plus Redis or ClickHouse for ipc consume; Redis or ClickHouse alone without Kafka and naive; ` +
        `all their work counts, merges and idle work included (before the rounds, left alone: broker ${formatCpuRate(idleCpu.kafka)}, ` +
        `Redis ${formatCpuRate(idleCpu.redis)}, ClickHouse ${formatCpuRate(idleCpu.clickhouse)})`,
    )
    console.log(
      `ClickHouse Kafka engine: a Kafka table (TabSeparated, one String per message) and a materialized view parsing it into a MergeTree, ` +
        `fresh group from the beginning; events/s from the view's creation to the last row (count polled every 50 ms, first rows after ` +
        `${formatMs(engine.firstRowMs)} ms, all after ${formatMs(engine.elapsedMs)} ms), checked like ipc's; CPU = the ClickHouse server's, ` +
        `server CPU = the broker's; peak RSS = the server's highest VmRSS sampled during the run (the whole server, not a process of its own)`,
    )
    console.log(`ipc consume → clickhouse vs ClickHouse Kafka engine: ${formatRatio(engine.clickhouseRatio)} (events/s, median of per-round ratios)`)
    console.log(
      `ipc's own CPU per event (ipc consume minus bare kafkajs, median of per-round differences): redis ${formatMicros(ownCpu.redis)} µs, ` +
        `clickhouse ${formatMicros(ownCpu.clickhouse)} µs; minus bare kafkajs with ipc's record batch decoder (ipc's own path alone): ` +
        `redis ${formatMicros(ownPathCpu.redis)} µs, clickhouse ${formatMicros(ownPathCpu.clickhouse)} µs`,
    )
    for (const backend of BACKENDS) {
      console.log(
        `--workers ${WORKERS} vs 1 → ${backend}: ${formatRatio(workerSummary[backend].eventsPerSecond / summary[backend].eventsPerSecond)} events/s, ` +
          `CPU ${formatMicros(workerSummary[backend].cpuMicrosPerEvent)} vs ${formatMicros(summary[backend].cpuMicrosPerEvent)} µs/event`,
      )
    }

    for (const backend of BACKENDS) {
      const other = otherFetchSummary[backend]
      console.log(
        `${OTHER_FETCH_LABEL} vs ipc's defaults → ${backend}: ${formatRatio(other.eventsPerSecond / summary[backend].eventsPerSecond)} events/s, ` +
          `peak RSS ${formatMb(other.peakRssKb)} vs ${formatMb(summary[backend].peakRssKb)}`,
      )
    }

    for (const backend of BACKENDS) {
      const own = v8HeapSummary[backend]
      console.log(
        `ipc's default heap growth vs ${V8_HEAP_LABEL} → ${backend}: ${formatRatio(summary[backend].eventsPerSecond / own.eventsPerSecond)} events/s, ` +
          `CPU ${formatMicros(summary[backend].cpuMicrosPerEvent)} vs ${formatMicros(own.cpuMicrosPerEvent)} µs/event, ` +
          `peak RSS ${formatMb(summary[backend].peakRssKb)} vs ${formatMb(own.peakRssKb)}`,
      )
    }

    const targets = BACKENDS.flatMap((backend) => {
      const s = summary[backend]
      const own = ownCpu[backend]
      return [
        {
          name: `consume → ${backend} ≥ ${TARGET_RATIO_TO_KCAT[backend]}× kcat`,
          pass: s.ratioToKcat >= TARGET_RATIO_TO_KCAT[backend],
          measured: formatRatio(s.ratioToKcat),
        },
        {name: `consume → ${backend} ≥ ${TARGET_RATIO_TO_NAIVE}× naive`, pass: s.ratioToNaive >= TARGET_RATIO_TO_NAIVE, measured: formatRatio(s.ratioToNaive)},
        {
          name: `peak RSS consume → ${backend} ≤ ${TARGET_PEAK_RSS_MB} MB at the default flags`,
          pass: s.peakRssKb / 1024 <= TARGET_PEAK_RSS_MB,
          measured: formatMb(s.peakRssKb),
        },
        {
          name: `consume → ${backend} at the default heap growth ≥ ${TARGET_HEAP_RATE_SHARE}× the events/s of V8's own`,
          pass: s.eventsPerSecond / v8HeapSummary[backend].eventsPerSecond >= TARGET_HEAP_RATE_SHARE,
          measured: formatRatio(s.eventsPerSecond / v8HeapSummary[backend].eventsPerSecond),
        },
        {
          name: `ipc's own CPU per event → ${backend} ≤ ${TARGET_OWN_CPU_MICROS[backend]} µs`,
          pass: own !== undefined && own <= TARGET_OWN_CPU_MICROS[backend],
          measured: `${formatMicros(own)} µs`,
        },
      ]
    })
    targets.push({
      name: `consume → clickhouse ≥ ${TARGET_RATIO_TO_ENGINE}× the ClickHouse Kafka engine`,
      pass: engine.clickhouseRatio >= TARGET_RATIO_TO_ENGINE,
      measured: formatRatio(engine.clickhouseRatio),
    })
    for (const target of targets) console.log(`${verdict(target.pass)}: ${target.name} (measured ${target.measured})`)

    writeResults('consume', {
      events: EVENTS,
      distinctDevices,
      partitions: PARTITIONS,
      produceBatch: PRODUCE_BATCH,
      rounds: ROUNDS,
      idleServiceCpuMsPerSecond: idleCpu,
      ownCpuMicrosPerEvent: ownCpu,
      ownPathCpuMicrosPerEvent: ownPathCpu,
      bareIpcDecoder: {eventsPerSecond: bareIpcDecoderRate, runs: bareIpcDecoderRuns},
      workers: {count: WORKERS, backends: workerSummary},
      otherFetch: {...OTHER_FETCH, backends: otherFetchSummary},
      v8HeapGrowth: {args: V8_HEAP_ARGS, backends: v8HeapSummary},
      statistic: 'median over rounds (peak RSS: highest)',
      kcat: {
        rounds: KCAT_ROUNDS,
        ...kcat,
        referenceEventsPerSecond: kcatRate,
        untilEndEventsPerSecond: kcatEndRate,
        serverCpuMicrosPerEvent: kcatServerCpu,
        untilEndServerCpuMicrosPerEvent: kcatEndServerCpu,
      },
      bareKafkajs: {
        eventsPerSecond: bareRate,
        cpuMicrosPerEvent: bareCpu,
        serverCpuMicrosPerEvent: bareServerCpu,
        ratioToKcat: bareRate / kcatRate,
        runs: bareRuns,
      },
      withoutKafka: {batch: CONSUMER_BATCH, ...withoutKafkaSummary},
      backends: summary,
      clickhouseKafkaEngine: engine,
      ratioClickHouseToKafkaEngine: engine.clickhouseRatio,
      targets,
    })
  })
}

runBenchmark('consume', main)
