/**
 * Memory over a long run: BENCH_SOAK_EVENTS (default 10,000,000) events of 10,000 devices produced
 * once into 16 partitions, then read by one `ipc consume → clickhouse` at the default flags with
 * `--metrics-port`. Every 500 ms the consumer's events so far (`ipc_consumer_events_total` from its
 * /metrics) and its RSS (VmRSS from /proc) are sampled.
 *
 * Target: no growth with the work. The RSS once 10 M events are read (the median of the samples in
 * the last tenth of the run) is within 10% of the RSS at 1 M (the median of the samples between
 * 1 M and 2 M events); the median of several samples, because each one lands at a different point
 * of the garbage collector's cycle.
 *
 * Run by `npm run bench -- consume-soak`.
 */
import {spawn} from 'node:child_process'
import {formatInt, renderTable} from '../src/cli/output.js'
import {
  BenchError,
  createTopic,
  dropClickHouseDatabases,
  envInteger,
  formatMb,
  median,
  progress,
  produceEvents,
  readVmRssKb,
  REPO_ROOT,
  runBenchmark,
  uniqueName,
  verdict,
  withServices,
  writeResults,
} from './support.js'

const EVENTS = envInteger('BENCH_SOAK_EVENTS', 10_000_000)
const DEVICES = 10_000
const PARTITIONS = 16
const SAMPLE_MS = 500
const EARLY = {from: 1_000_000, to: 2_000_000}
const MAX_GROWTH = 0.1
const TIMEOUT_MS = 30 * 60_000

interface Sample {
  atMs: number
  events: number
  rssKb: number
}

async function scrapeEvents(url: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(url)).text()
    const line = text.split('\n').find((each) => each.startsWith('ipc_consumer_events_total '))
    return line === undefined ? undefined : Number(line.split(' ')[1])
  } catch {
    return undefined
  }
}

/** Runs `ipc consume` over the topic, sampling its events and RSS until it stops. */
async function consumeSampled(args: readonly string[]): Promise<{samples: Sample[]; code: number | null; stdout: string; stderr: string}> {
  const child = spawn(process.execPath, ['bin/run.js', ...args], {cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  let metricsUrl: string | undefined
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
    metricsUrl ??= /metrics on (http:\/\/\S+\/metrics)/.exec(stderr)?.[1]
  })
  const started = Date.now()
  const samples: Sample[] = []
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
  const killer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS)
  let running = true
  void exited.then(() => (running = false))
  while (running) {
    await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS))
    const rssKb = child.pid === undefined ? undefined : readVmRssKb(child.pid)
    const events = metricsUrl === undefined ? undefined : await scrapeEvents(metricsUrl)
    if (rssKb !== undefined && events !== undefined && events > 0) {
      samples.push({atMs: Date.now() - started, events, rssKb})
      if (samples.length % 20 === 0) progress(`  ${formatInt(events)} events, RSS ${formatMb(rssKb)}`)
    }
  }
  clearTimeout(killer)
  return {samples, code: await exited, stdout, stderr}
}

async function main(): Promise<void> {
  await withServices(async (env) => {
    const topic = uniqueName('ipc_bench_soak')
    const database = uniqueName('ipc_bench_soak')
    await createTopic(topic, PARTITIONS)
    progress(`producing ${formatInt(EVENTS)} events of ${formatInt(DEVICES)} devices to ${topic} (${PARTITIONS} partitions)`)
    await produceEvents(topic, {events: EVENTS, devices: DEVICES, batch: 2000, seed: 11}, TIMEOUT_MS)
    progress(`ipc consume → clickhouse, default flags, sampling events and RSS every ${SAMPLE_MS} ms`)
    let result
    try {
      result = await consumeSampled([
        'consume',
        '--topic',
        topic,
        '--backend',
        'clickhouse',
        '--clickhouse-url',
        env.CLICKHOUSE_URL,
        '--clickhouse-database',
        database,
        '--group',
        uniqueName('ipc_bench_soak_group'),
        '--from-beginning',
        '--until-idle',
        '2s',
        '--report-interval',
        '1h',
        '--metrics-port',
        '0',
        '--json',
      ])
    } finally {
      await dropClickHouseDatabases(env.CLICKHOUSE_URL, [database])
    }
    if (result.code !== 0) throw new BenchError(`ipc consume exited with ${result.code}: ${result.stderr.slice(-1000)}`)
    const summary = JSON.parse(result.stdout) as {stats: {processed: number}; steadyEventsPerSecond: number}
    if (summary.stats.processed !== EVENTS) throw new BenchError(`ipc consume processed ${summary.stats.processed} events, expected ${EVENTS}`)
    const {samples} = result
    const early = samples.filter((sample) => sample.events >= EARLY.from && sample.events < EARLY.to)
    const late = samples.filter((sample) => sample.events >= EVENTS * 0.9)
    if (early.length === 0 || late.length === 0) throw new BenchError(`too few samples (${samples.length}) to compare the RSS at 1 M and at the end`)
    const earlyRss = median(early.map((sample) => sample.rssKb))
    const lateRss = median(late.map((sample) => sample.rssKb))
    const peakRss = Math.max(...samples.map((sample) => sample.rssKb))
    const growth = lateRss / earlyRss - 1
    console.log(
      renderTable(
        ['events read', 'samples', 'median RSS'],
        [
          [`${formatInt(EARLY.from)}–${formatInt(EARLY.to)}`, String(early.length), formatMb(earlyRss)],
          [`${formatInt(EVENTS * 0.9)}–${formatInt(EVENTS)}`, String(late.length), formatMb(lateRss)],
          ['whole run (peak)', String(samples.length), formatMb(peakRss)],
        ],
      ),
    )
    console.log(`ipc consume → clickhouse: ${formatInt(summary.steadyEventsPerSecond)} events/s over ${formatInt(EVENTS)} events`)
    const target = {
      name: `RSS at ${formatInt(EVENTS)} events within ${MAX_GROWTH * 100}% of the RSS at 1 M`,
      pass: growth <= MAX_GROWTH,
      measured: `${(growth * 100).toFixed(1)}%`,
    }
    console.log(`${verdict(target.pass)}: ${target.name} (measured ${target.measured})`)
    writeResults('consume-soak', {
      events: EVENTS,
      devices: DEVICES,
      partitions: PARTITIONS,
      earlyRssKb: earlyRss,
      lateRssKb: lateRss,
      peakRssKb: peakRss,
      growth,
      samples,
      targets: [target],
    })
  })
}

runBenchmark('consume-soak', main)
