/**
 * What each compression codec costs the consumer: the same events written by kcat (librdkafka) with
 * `-z none|gzip|snappy|lz4|zstd` into one topic per codec, each read by kcat to /dev/null (the
 * reference: librdkafka's C decompression) and by `ipc consume → redis`, in alternating rounds.
 *
 * A codec's cost to a reader is its CPU per event on that codec's topic minus on the uncompressed
 * one. The target: ipc's rate on a codec, as a share of its uncompressed rate, is no worse than kcat's
 * share less 10 points (decompression must not cost ipc more than it costs kcat, beside what ipc
 * does per event anyway); where it is, the row says MISS.
 *
 * Run by `npm run bench -- consume` after bench/consume.ts. Sizes: BENCH_CODEC_EVENTS (default
 * 500,000), BENCH_CODEC_ROUNDS (default 2).
 */
import {rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {EventGenerator} from '../src/loadgen/generator.js'
import {formatInt, renderTable} from '../src/cli/output.js'
import {
  BenchError,
  createTopic,
  deleteRedisKeys,
  envInteger,
  formatMicros,
  formatRatio,
  median,
  medianOf,
  microsPerEvent,
  progress,
  runBenchmark,
  runChild,
  runIpcJson,
  topicOffsets,
  uniqueName,
  verdict,
  withServices,
  writeResults,
  type ServiceEnv,
} from './support.js'

const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const
type Codec = (typeof CODECS)[number]
const EVENTS = envInteger('BENCH_CODEC_EVENTS', 500_000)
const DEVICES = 10_000
const PARTITIONS = 16
const ROUNDS = envInteger('BENCH_CODEC_ROUNDS', 2)
/** How far ipc's share of its uncompressed rate may fall below kcat's before it is a MISS. */
const SHARE_TOLERANCE = 0.1
const REDIS_COUNT_TOLERANCE = 0.03

interface Run {
  eventsPerSecond: number
  cpuMicrosPerEvent?: number
}

interface ConsumeJson {
  steadyEventsPerSecond: number
  totalDevices?: number
  stats: {processed: number; invalid: number}
}

/** `key<TAB>value` lines of EVENTS generated events, and how many distinct devices they hold. */
function writeDataFile(): {file: string; distinctDevices: number} {
  const generator = new EventGenerator({numDevices: DEVICES, seed: 11})
  const lines: string[] = new Array(EVENTS)
  for (let i = 0; i < EVENTS; i++) {
    const {key, value} = generator.next()
    lines[i] = `${key}\t${value}`
  }
  const file = join(tmpdir(), `ipc-bench-codecs-${process.pid}.tsv`)
  writeFileSync(file, `${lines.join('\n')}\n`)
  return {file, distinctDevices: generator.distinctDevices}
}

async function writeTopic(env: ServiceEnv, topic: string, codec: Codec, file: string): Promise<void> {
  await createTopic(topic, PARTITIONS)
  const result = await runChild('kcat', ['-P', '-b', env.KAFKA_BROKERS, '-t', topic, '-K', '\t', '-z', codec], {timeoutMs: 300_000, stdinFile: file})
  if (result.code !== 0) throw new BenchError(`kcat -P -z ${codec} exited with ${result.code}: ${result.stderr.slice(-500)}`)
  const held = (await topicOffsets(env.KAFKA_BROKERS, topic)).reduce((sum, partition) => sum + partition.high - partition.low, 0)
  if (held !== EVENTS) throw new BenchError(`topic ${topic} holds ${held} events, expected ${EVENTS}`)
}

/** kcat reading the whole topic to /dev/null: rate over the whole process (start-up included, as for ipc's wall time). */
async function kcatRead(env: ServiceEnv, topic: string): Promise<Run> {
  const result = await runChild('kcat', ['-C', '-b', env.KAFKA_BROKERS, '-t', topic, '-o', 'beginning', '-e', '-q'], {
    timeoutMs: 120_000,
    stdout: 'discard',
    measureResources: true,
  })
  if (result.code !== 0) throw new BenchError(`kcat -C ${topic} exited with ${result.code}: ${result.stderr.slice(-500)}`)
  return {eventsPerSecond: (EVENTS * 1000) / result.wallMs, cpuMicrosPerEvent: microsPerEvent(result.cpuMs, EVENTS)}
}

async function ipcRead(topic: string, distinctDevices: number, key: string): Promise<Run> {
  const {json, child} = await runIpcJson<ConsumeJson>(
    [
      'consume',
      '--topic',
      topic,
      '--backend',
      'redis',
      '--redis-key',
      key,
      '--group',
      uniqueName('ipc_bench_codecs'),
      '--from-beginning',
      '--until-idle',
      '2s',
      '--report-interval',
      '1h',
      '--json',
    ],
    {timeoutMs: 300_000, measureResources: true},
  )
  if (json.stats.processed !== EVENTS || json.stats.invalid !== 0) throw new BenchError(`ipc consume of ${topic} processed ${json.stats.processed} events`)
  const counted = json.totalDevices ?? 0
  if (Math.abs(counted - distinctDevices) > REDIS_COUNT_TOLERANCE * distinctDevices) {
    throw new BenchError(`ipc consume of ${topic} counted ${counted} devices, expected about ${distinctDevices}`)
  }
  return {eventsPerSecond: json.steadyEventsPerSecond, cpuMicrosPerEvent: microsPerEvent(child.cpuMs, EVENTS)}
}

interface CodecSummary {
  kcat: {eventsPerSecond: number; cpuMicrosPerEvent?: number; shareOfUncompressed: number}
  ipc: {eventsPerSecond: number; cpuMicrosPerEvent?: number; shareOfUncompressed: number; ratioToKcat: number}
  pass: boolean
}

async function main(): Promise<void> {
  await withServices(async (env) => {
    progress(`writing ${formatInt(EVENTS)} events of ${formatInt(DEVICES)} devices with kcat -z, one ${PARTITIONS}-partition topic per codec`)
    const {file, distinctDevices} = writeDataFile()
    const topics = new Map<Codec, string>()
    try {
      for (const codec of CODECS) {
        const topic = uniqueName(`ipc_bench_codec_${codec}`)
        await writeTopic(env, topic, codec, file)
        topics.set(codec, topic)
      }
    } finally {
      rmSync(file, {force: true})
    }
    const runs = new Map<Codec, {kcat: Run[]; ipc: Run[]}>(CODECS.map((codec) => [codec, {kcat: [], ipc: []}]))
    const keys: string[] = []
    for (let round = 0; round < ROUNDS; round++) {
      for (const codec of CODECS) {
        progress(`round ${round + 1}/${ROUNDS}: ${codec}: kcat, then ipc consume → redis`)
        const topic = topics.get(codec)!
        runs.get(codec)!.kcat.push(await kcatRead(env, topic))
        const key = uniqueName('ipc_bench_codecs')
        keys.push(key)
        runs.get(codec)!.ipc.push(await ipcRead(topic, distinctDevices, key))
      }
    }
    await deleteRedisKeys(env.REDIS_URL, keys)

    const rate = (list: Run[]) => median(list.map((run) => run.eventsPerSecond))
    const cpu = (list: Run[]) => medianOf(list.map((run) => run.cpuMicrosPerEvent))
    const none = runs.get('none')!
    const summary = {} as Record<Codec, CodecSummary>
    const rows: string[][] = []
    for (const codec of CODECS) {
      const {kcat, ipc} = runs.get(codec)!
      const kcatShare = rate(kcat) / rate(none.kcat)
      const ipcShare = rate(ipc) / rate(none.ipc)
      const pass = codec === 'none' || ipcShare >= kcatShare - SHARE_TOLERANCE
      summary[codec] = {
        kcat: {eventsPerSecond: rate(kcat), cpuMicrosPerEvent: cpu(kcat), shareOfUncompressed: kcatShare},
        ipc: {eventsPerSecond: rate(ipc), cpuMicrosPerEvent: cpu(ipc), shareOfUncompressed: ipcShare, ratioToKcat: rate(ipc) / rate(kcat)},
        pass,
      }
      const added = (list: Run[], reference: Run[]) => {
        const [mine, base] = [cpu(list), cpu(reference)]
        return mine === undefined || base === undefined ? '-' : `${mine - base >= 0 ? '+' : ''}${formatMicros(mine - base)}`
      }
      rows.push([
        codec,
        formatInt(rate(kcat)),
        formatMicros(cpu(kcat)),
        added(kcat, none.kcat),
        formatRatio(kcatShare),
        formatInt(rate(ipc)),
        formatMicros(cpu(ipc)),
        added(ipc, none.ipc),
        formatRatio(ipcShare),
        formatRatio(rate(ipc) / rate(kcat)),
        codec === 'none' ? '-' : verdict(pass),
      ])
    }
    console.log(
      renderTable(
        [
          'codec',
          'kcat events/s',
          'kcat CPU µs/event',
          'codec adds',
          'kcat vs none',
          'ipc → redis events/s',
          'ipc CPU µs/event',
          'codec adds',
          'ipc vs none',
          'ipc vs kcat',
          'verdict',
        ],
        rows,
      ),
    )
    console.log(
      `data: ${formatInt(EVENTS)} events of ${formatInt(distinctDevices)} devices, ${PARTITIONS} partitions, written by kcat -z (librdkafka's ` +
        `batches); median of ${ROUNDS} alternating rounds; kcat's rate over its whole process (-e), ipc's from first to last event; CPU of ` +
        `the whole process per event. Target: ipc's share of its uncompressed rate ≥ kcat's share − ${SHARE_TOLERANCE * 100} points.`,
    )
    for (const codec of CODECS.slice(1)) {
      const s = summary[codec]
      console.log(
        `${verdict(s.pass)} ${codec}: ipc keeps ${formatRatio(s.ipc.shareOfUncompressed)} of its uncompressed rate, kcat ${formatRatio(s.kcat.shareOfUncompressed)}`,
      )
    }
    writeResults('consume-codecs', {
      events: EVENTS,
      devices: DEVICES,
      partitions: PARTITIONS,
      rounds: ROUNDS,
      distinctDevices,
      codecs: summary,
      runs: Object.fromEntries(runs),
    })
  })
}

runBenchmark('consume-codecs', main)
