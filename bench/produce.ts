/**
 * Producer throughput: `ipc produce` beside a bare kafkajs producer loop sending the same
 * pre-generated messages with the same batch size (bench/bare-producer.ts), and beside kcat (the C
 * client) sending the same events from a file.
 *
 *   node dist/bench/produce.js
 *
 * 300,000 events of 10,000 devices into a 16-partition topic per producer; rounds alternate between
 * the producers. Every run's event count is checked on the broker (high watermarks). Settings:
 * BENCH_PRODUCE_EVENTS, BENCH_PRODUCE_BATCH, BENCH_PRODUCE_ROUNDS. Writes bench/results/produce.json.
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {EventGenerator} from '../src/loadgen/generator.js'
import {formatInt, renderTable} from '../src/cli/output.js'
import {
  BenchError,
  createTopic,
  envInteger,
  formatMicros,
  formatMs,
  formatRatio,
  median,
  medianOf,
  progress,
  runBenchmark,
  runChild,
  runIpcJson,
  type ServiceEnv,
  topicOffsets,
  uniqueName,
  verdict,
  withServices,
  writeResults,
} from './support.js'

const EVENTS = envInteger('BENCH_PRODUCE_EVENTS', 300_000)
/** Events per send request for `ipc produce --batch` and the bare loop (the README says why this one). */
const BATCH = envInteger('BENCH_PRODUCE_BATCH', 2000)
const ROUNDS = envInteger('BENCH_PRODUCE_ROUNDS', 5)
const DEVICES = 10_000
const PARTITIONS = 16
const SEED = 20_241_122
const RUN_TIMEOUT_MS = 180_000
const TARGET_RATIO_TO_BARE = 0.9

type ProducerName = 'ipc' | 'bare' | 'kcat'
const PRODUCERS: readonly ProducerName[] = ['ipc', 'bare', 'kcat']
const LABELS: Record<ProducerName, string> = {
  ipc: `ipc produce --batch ${BATCH}`,
  bare: `bare kafkajs loop, batch ${BATCH} (reference)`,
  kcat: 'kcat -P from a file, N events minus 1 event',
}

interface Run {
  eventsPerSecond: number
  wallMs: number
  /** CPU time of the whole process per event (start-up included). */
  cpuMicrosPerEvent?: number
}

/** Sum of the topic's high watermarks: every event ever appended, whatever retention dropped. */
async function appendedEvents(env: ServiceEnv, topic: string): Promise<number> {
  return (await topicOffsets(env.KAFKA_BROKERS, topic)).reduce((sum, partition) => sum + partition.high, 0)
}

/** The benchmark's events as kcat -K'\t' input lines: `key<TAB>value`. */
function writeKcatInput(file: string, count: number): void {
  const generator = new EventGenerator({numDevices: DEVICES, seed: SEED})
  const lines: string[] = []
  for (let i = 0; i < count; i++) {
    const event = generator.next()
    lines.push(`${event.key}\t${event.value}\n`)
  }
  writeFileSync(file, lines.join(''))
}

async function kcatProduce(env: ServiceEnv, topic: string, file: string): Promise<number> {
  const result = await runChild('kcat', ['-P', '-b', env.KAFKA_BROKERS, '-t', topic, '-K', '\t', '-X', 'acks=all'], {
    timeoutMs: RUN_TIMEOUT_MS,
    stdinFile: file,
  })
  if (result.code !== 0) throw new BenchError(`kcat -P exited with ${result.code}: ${result.stderr.slice(-500)}`)
  return result.wallMs
}

function cpuPerEvent(cpuMs: number | undefined): number | undefined {
  return cpuMs === undefined ? undefined : (cpuMs * 1000) / EVENTS
}

async function produceOnce(env: ServiceEnv, producer: ProducerName, topic: string, files: {all: string; one: string}): Promise<Run> {
  switch (producer) {
    case 'ipc': {
      const {json, child} = await runIpcJson<{messagesSent: number; messagesPerSecond: number}>(
        [
          'produce',
          '--topic',
          topic,
          '--num-devices',
          String(DEVICES),
          '--num-messages',
          String(EVENTS),
          '--pause-ms',
          '0',
          '--batch',
          String(BATCH),
          '--seed',
          String(SEED),
          '--json',
        ],
        {timeoutMs: RUN_TIMEOUT_MS, measureResources: true},
      )
      return {eventsPerSecond: json.messagesPerSecond, wallMs: child.wallMs, cpuMicrosPerEvent: cpuPerEvent(child.cpuMs)}
    }
    case 'bare': {
      const child = await runChild(
        process.execPath,
        ['dist/bench/bare-producer.js', env.KAFKA_BROKERS, topic, String(EVENTS), String(BATCH), String(DEVICES), String(SEED)],
        {timeoutMs: RUN_TIMEOUT_MS, measureResources: true},
      )
      if (child.code !== 0) throw new BenchError(`bare producer exited with ${child.code}: ${child.stderr.slice(-1000)}`)
      const json = JSON.parse(child.stdout) as {messagesPerSecond: number}
      return {eventsPerSecond: json.messagesPerSecond, wallMs: child.wallMs, cpuMicrosPerEvent: cpuPerEvent(child.cpuMs)}
    }
    case 'kcat': {
      // Start-up, connection and metadata cost the same for 1 event as for N: take them out.
      const oneMs = await kcatProduce(env, topic, files.one)
      const allMs = await kcatProduce(env, topic, files.all)
      return {eventsPerSecond: ((EVENTS - 1) * 1000) / Math.max(1, allMs - oneMs), wallMs: allMs}
    }
  }
}

async function main(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'ipc-bench-produce-'))
  try {
    await withServices(async (env) => {
      const files = {all: join(scratch, 'events.tsv'), one: join(scratch, 'one.tsv')}
      writeKcatInput(files.all, EVENTS)
      writeKcatInput(files.one, 1)
      const topics = Object.fromEntries(PRODUCERS.map((producer) => [producer, uniqueName(`ipc_bench_produce_${producer}`)])) as Record<ProducerName, string>
      for (const topic of Object.values(topics)) await createTopic(topic, PARTITIONS)

      const runs: Record<ProducerName, Run[]> = {ipc: [], bare: [], kcat: []}
      for (let round = 1; round <= ROUNDS; round++) {
        // ipc and the bare loop run back to back, in turns first, so each round gives a fair pair.
        const order: ProducerName[] = round % 2 === 1 ? ['ipc', 'bare', 'kcat'] : ['bare', 'ipc', 'kcat']
        for (const producer of order) {
          progress(`round ${round}/${ROUNDS}: ${LABELS[producer]}`)
          const before = await appendedEvents(env, topics[producer])
          const run = await produceOnce(env, producer, topics[producer], files)
          const appended = (await appendedEvents(env, topics[producer])) - before
          const expected = producer === 'kcat' ? EVENTS + 1 : EVENTS
          if (appended !== expected) throw new BenchError(`${LABELS[producer]} appended ${appended} events, expected ${expected}`)
          runs[producer].push(run)
          progress(`  ${formatInt(run.eventsPerSecond)} events/s`)
        }
      }

      const rate = (producer: ProducerName) => median(runs[producer].map((run) => run.eventsPerSecond))
      const bare = rate('bare')
      const kcat = rate('kcat')
      const rows = PRODUCERS.map((producer) => [
        LABELS[producer],
        formatInt(rate(producer)),
        formatRatio(rate(producer) / bare),
        formatRatio(rate(producer) / kcat),
        formatMicros(medianOf(runs[producer].map((run) => run.cpuMicrosPerEvent))),
        formatMs(median(runs[producer].map((run) => run.wallMs))),
      ])
      console.log(renderTable(['producer', 'events/s', 'vs bare kafkajs', 'vs kcat', 'CPU µs/event', 'process wall ms'], rows))
      console.log(
        `${formatInt(EVENTS)} events of ${DEVICES} devices per run, ${PARTITIONS} partitions, acks from all in-sync replicas; median of ${ROUNDS} rounds; ` +
          'ipc and bare: from connected to the last acknowledgement (the bare loop generates its events before the clock starts); ' +
          'CPU: whole process (start-up and generation included) per event; every run checked on the broker',
      )
      // The target compares each round's pair, then takes the median: steadier than a ratio of medians on a busy machine.
      const pairedRatios = runs.ipc.map((run, index) => run.eventsPerSecond / runs.bare[index].eventsPerSecond)
      const ratio = median(pairedRatios)
      const pass = ratio >= TARGET_RATIO_TO_BARE
      console.log(
        `${verdict(pass)}: ipc produce ≥ ${TARGET_RATIO_TO_BARE}× the bare kafkajs loop (measured ` +
          `${formatRatio(ratio)}, median of the rounds' ratios ` +
          `${pairedRatios.map((r) => r.toFixed(2)).join(', ')})`,
      )
      writeResults('produce', {
        events: EVENTS,
        batch: BATCH,
        devices: DEVICES,
        partitions: PARTITIONS,
        rounds: ROUNDS,
        statistic: 'median over rounds',
        producers: Object.fromEntries(
          PRODUCERS.map((producer) => [
            producer,
            {label: LABELS[producer], eventsPerSecond: rate(producer), ratioToBare: rate(producer) / bare, runs: runs[producer]},
          ]),
        ),
        targets: [{name: `ipc produce ≥ ${TARGET_RATIO_TO_BARE}× bare kafkajs`, pass, measured: ratio, pairedRatios}],
      })
    })
  } finally {
    rmSync(scratch, {recursive: true, force: true})
  }
}

runBenchmark('produce', main)
