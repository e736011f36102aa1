/**
 * What each compression codec costs the consumer: the same events written by kcat (librdkafka) with
 * `-z none|gzip|snappy|lz4|zstd` into one topic per codec, each read by kcat to /dev/null (the
 * reference: librdkafka's C decompression) and by `ipc consume → redis`, in alternating rounds.
 *
 * A codec's cost to a reader is its CPU per event on that codec's topic minus on the uncompressed
 * one. For ipc that difference is within the spread between rounds (about 1 µs of 9), so its codec
 * cost is also measured in process: kafkajs's decoder with ipc's codecs on batches of 1,000 events.
 * The target: that cost is no more than what the codec adds to kcat (at least 0) plus 0.5 µs;
 * where it is more, the row says MISS. Rates
 * are shown beside it, as a share of each reader's uncompressed rate: compressed topics read faster
 * here, the broker sending a third to a tenth of the bytes.
 *
 * Run by `npm run bench -- consume` after bench/consume.ts. Sizes: BENCH_CODEC_EVENTS (default
 * 500,000), BENCH_CODEC_ROUNDS (default 2).
 */
import {rmSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {compressionType, registerCompressionCodecs} from '../src/kafka/codecs.js'
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
/** How much more CPU per event a codec may add to ipc than to kcat before it is a MISS. */
const CPU_TOLERANCE_MICROS = 0.5
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

// kafkajs's own record batch encoder and decoder: what a fetch decodes, without the network.
const require = createRequire(import.meta.url)
const {RecordBatch} = require('kafkajs/src/protocol/recordBatch/v0/index.js') as {
  RecordBatch: (batch: {compression: number; records: unknown[]}) => Promise<{buffer: Buffer}>
}
const Record = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (record: {offsetDelta: number; key: Buffer; value: Buffer}) => unknown
const decodeRecordBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (decoder: unknown) => Promise<unknown>
const Decoder = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => unknown
const DECODE_BATCH = 1000
const DECODE_REPEATS = 300

/**
 * CPU per event of decoding record batches of 1,000 events in this process with kafkajs's decoder
 * and ipc's codecs, per codec: the codec's own cost is its figure minus the uncompressed one. Low
 * noise, unlike whole-process CPU, where a codec's share is within the spread between rounds.
 */
async function decodeCpuMicrosPerEvent(codec: Codec): Promise<number> {
  registerCompressionCodecs()
  const generator = new EventGenerator({numDevices: DEVICES, seed: 5})
  const records = Array.from({length: DECODE_BATCH}, (_, offsetDelta) => {
    const {key, value} = generator.next()
    return Record({offsetDelta, key: Buffer.from(key), value: Buffer.from(value)})
  })
  const {buffer} = await RecordBatch({compression: compressionType(codec), records})
  for (let i = 0; i < 20; i++) await decodeRecordBatch(new Decoder(buffer))
  const started = process.cpuUsage()
  for (let i = 0; i < DECODE_REPEATS; i++) await decodeRecordBatch(new Decoder(buffer))
  const used = process.cpuUsage(started)
  return (used.user + used.system) / (DECODE_REPEATS * DECODE_BATCH)
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

interface ReaderSummary {
  eventsPerSecond: number
  cpuMicrosPerEvent?: number
  /** CPU per event on this codec's topic minus on the uncompressed one. */
  addedCpuMicrosPerEvent?: number
  shareOfUncompressed: number
}

interface CodecSummary {
  kcat: ReaderSummary
  ipc: ReaderSummary & {ratioToKcat: number; decodeMicrosPerEvent: number; decompressionMicrosPerEvent: number}
  pass: boolean
}

function addedCpu(micros: number | undefined, uncompressed: number | undefined): number | undefined {
  return micros === undefined || uncompressed === undefined ? undefined : micros - uncompressed
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

    progress('decoding batches of 1,000 events with each codec in this process')
    const decode = new Map<Codec, number>()
    for (const codec of CODECS) decode.set(codec, await decodeCpuMicrosPerEvent(codec))
    const rate = (list: Run[]) => median(list.map((run) => run.eventsPerSecond))
    const cpu = (list: Run[]) => medianOf(list.map((run) => run.cpuMicrosPerEvent))
    const none = runs.get('none')!
    const summary = {} as Record<Codec, CodecSummary>
    const rows: string[][] = []
    for (const codec of CODECS) {
      const {kcat, ipc} = runs.get(codec)!
      const kcatShare = rate(kcat) / rate(none.kcat)
      const ipcShare = rate(ipc) / rate(none.ipc)
      const kcatAdds = addedCpu(cpu(kcat), cpu(none.kcat))
      const ipcAdds = addedCpu(cpu(ipc), cpu(none.ipc))
      const decompression = decode.get(codec)! - decode.get('none')!
      const pass = codec === 'none' || (kcatAdds !== undefined && decompression <= Math.max(0, kcatAdds) + CPU_TOLERANCE_MICROS)
      summary[codec] = {
        kcat: {eventsPerSecond: rate(kcat), cpuMicrosPerEvent: cpu(kcat), addedCpuMicrosPerEvent: kcatAdds, shareOfUncompressed: kcatShare},
        ipc: {
          eventsPerSecond: rate(ipc),
          cpuMicrosPerEvent: cpu(ipc),
          addedCpuMicrosPerEvent: ipcAdds,
          decodeMicrosPerEvent: decode.get(codec)!,
          decompressionMicrosPerEvent: decompression,
          shareOfUncompressed: ipcShare,
          ratioToKcat: rate(ipc) / rate(kcat),
        },
        pass,
      }
      const added = (micros: number | undefined) => (micros === undefined ? '-' : `${micros >= 0 ? '+' : ''}${formatMicros(micros)}`)
      rows.push([
        codec,
        formatInt(rate(kcat)),
        formatMicros(cpu(kcat)),
        added(kcatAdds),
        formatRatio(kcatShare),
        formatInt(rate(ipc)),
        formatMicros(cpu(ipc)),
        added(ipcAdds),
        `${formatMicros(decode.get(codec))} (${added(decompression)})`,
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
          'decode in process µs/event (codec)',
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
        `the whole process per event; decode in process: kafkajs's decoder and ipc's codecs on batches of ${DECODE_BATCH} events, the codec's ` +
        `share beside it. Target: the codec's share ≤ the CPU it adds to kcat (at least 0) + ${CPU_TOLERANCE_MICROS} µs.`,
    )
    for (const codec of CODECS.slice(1)) {
      const s = summary[codec]
      console.log(
        `${verdict(s.pass)} ${codec}: decompression costs ipc ${formatMicros(s.ipc.decompressionMicrosPerEvent)} µs of CPU per event ` +
          `(whole process: ${formatMicros(s.ipc.addedCpuMicrosPerEvent)}); it adds ${formatMicros(s.kcat.addedCpuMicrosPerEvent)} to kcat; ` +
          `rate ${formatRatio(s.ipc.shareOfUncompressed)} of uncompressed for ipc, ${formatRatio(s.kcat.shareOfUncompressed)} for kcat`,
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
