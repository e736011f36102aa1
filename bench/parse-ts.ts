/**
 * Timestamp parser throughput: `parseTimestamp` and `tryParseTimestamp` against a naive
 * `new Date(x).toISOString()` on the same mixed corpus of every accepted shape.
 * Prints a table, the ratio and PASS/MISS against the target; writes bench/results/parse-ts.json.
 */
import {mkdirSync, writeFileSync} from 'node:fs'
import {cpus, loadavg} from 'node:os'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'
import {formatInt, renderTable} from '../src/cli/output.js'
import {formatIsoMillis, isTimestampFailure, parseTimestamp, tryParseTimestamp} from '../src/events/timestamp.js'

const TARGET_PER_SECOND = 3_000_000
const CORPUS_SIZE = Number(process.env.BENCH_PARSE_TS_VALUES ?? 1_000_000)
const ROUNDS = 7

/** mulberry32: small deterministic PRNG, so every run parses the same corpus. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

function pad2(n: number): string {
  return String(n).padStart(2, '0')
}

function buildCorpus(size: number): Array<string | number> {
  const random = prng(20_240_918)
  const pick = (n: number) => Math.floor(random() * n)
  const corpus: Array<string | number> = []
  const from = Date.UTC(1990, 0, 1)
  const span = Date.UTC(2060, 0, 1) - from
  for (let i = 0; i < size; i++) {
    const ms = from + Math.floor(random() * span)
    const iso = formatIsoMillis(ms) // YYYY-MM-DDTHH:mm:ss.sssZ
    const base = iso.slice(0, 19)
    const fraction = String(pick(1_000_000_000))
      .padStart(9, '0')
      .slice(0, 1 + pick(9))
    const offset = `${random() < 0.5 ? '+' : '-'}${pad2(pick(15))}:${pad2(pick(4) * 15)}`
    const seconds = Math.floor(ms / 1000)
    const micros = `${ms}${String(pick(1000)).padStart(3, '0')}`
    switch (i % 16) {
      case 0:
        corpus.push(iso)
        break
      case 1:
        corpus.push(`${base}.${fraction}${offset}`)
        break
      case 2:
        corpus.push(`${base}${offset.replace(':', '')}`)
        break
      case 3:
        corpus.push(`${base}.${fraction}`)
        break
      case 4:
        corpus.push(`${base.replace('T', ' ')}`)
        break
      case 5:
        corpus.push(`'${iso}'`)
        break
      case 6:
        corpus.push(`${base.slice(0, 16)}Z`)
        break
      case 7:
        corpus.push(` "${base.toLowerCase()}z" `)
        break
      case 8:
        corpus.push(seconds)
        break
      case 9:
        corpus.push(ms / 1000)
        break
      case 10:
        corpus.push(ms)
        break
      case 11:
        corpus.push(String(ms))
        break
      case 12:
        corpus.push(`'${seconds}.${fraction}'`)
        break
      case 13:
        corpus.push(micros)
        break
      case 14:
        corpus.push(`${micros}${String(pick(1000)).padStart(3, '0')}`)
        break
      default:
        corpus.push(Number(micros))
        break
    }
  }
  // Through JSON, as the consumer gets them: flat strings, not the slices and concatenations built above.
  return JSON.parse(JSON.stringify(corpus)) as Array<string | number>
}

interface Measurement {
  name: string
  valuesPerSecond: number
  bestRoundMs: number
  /** Values per second of this process's CPU time: less sensitive to other processes' load. */
  valuesPerCpuSecond: number
}

type Pass = (values: ReadonlyArray<string | number>) => number

/**
 * Times each implementation over the whole corpus: a warm-up pass each (lets the JIT optimise),
 * then ROUNDS rounds that run every implementation in turn, so load from other processes hits all
 * of them alike; the best round counts.
 */
function measureAll(corpus: ReadonlyArray<string | number>, passes: ReadonlyArray<readonly [string, Pass]>): Measurement[] {
  let checksum = 0
  for (const [, pass] of passes) checksum += pass(corpus)
  const best = passes.map(() => Number.POSITIVE_INFINITY)
  const bestCpu = passes.map(() => Number.POSITIVE_INFINITY)
  for (let round = 0; round < ROUNDS; round++) {
    passes.forEach(([, pass], index) => {
      const cpuBefore = process.cpuUsage()
      const started = process.hrtime.bigint()
      checksum += pass(corpus)
      best[index] = Math.min(best[index], Number(process.hrtime.bigint() - started) / 1e6)
      const cpu = process.cpuUsage(cpuBefore)
      bestCpu[index] = Math.min(bestCpu[index], (cpu.user + cpu.system) / 1000)
    })
  }
  if (Number.isNaN(checksum)) console.error('checksum is NaN') // keeps the results observable
  return passes.map(([name], index) => ({
    name,
    valuesPerSecond: (corpus.length / best[index]) * 1000,
    bestRoundMs: best[index],
    valuesPerCpuSecond: (corpus.length / bestCpu[index]) * 1000,
  }))
}

const corpus = buildCorpus(CORPUS_SIZE)
const rejected = corpus.filter((value) => isTimestampFailure(tryParseTimestamp(value))).length
if (rejected > 0) console.error(`warning: ${rejected} corpus values were rejected; the corpus should contain valid values only`)
const results = measureAll(corpus, [
  [
    'parseTimestamp',
    (values) => {
      let sum = 0
      for (const value of values) sum += parseTimestamp(value).ms
      return sum
    },
  ],
  [
    'tryParseTimestamp',
    (values) => {
      let sum = 0
      for (const value of values) {
        const parsed = tryParseTimestamp(value)
        if (!isTimestampFailure(parsed)) sum += parsed.ms
      }
      return sum
    },
  ],
  [
    'new Date(x).toISOString() (baseline)',
    (values) => {
      let length = 0
      for (const value of values) {
        const date = new Date(value)
        length += Number.isNaN(date.getTime()) ? 1 : date.toISOString().length
      }
      return length
    },
  ],
])

// Measured after the timings, so the timed passes start from the same state.
const baselineAgrees = corpus.filter((value) => {
  try {
    return new Date(value).toISOString() === parseTimestamp(value).iso
  } catch {
    return false
  }
}).length

const [strict, hotPath, baseline] = results
console.log(
  renderTable(
    ['implementation', 'values/s', 'best round', 'values/CPU-s'],
    results.map((r) => [r.name, formatInt(r.valuesPerSecond), `${r.bestRoundMs.toFixed(1)} ms`, formatInt(r.valuesPerCpuSecond)]),
  ),
)
console.log(`corpus: ${formatInt(corpus.length)} values of 16 shapes; best of ${ROUNDS} interleaved rounds after a warm-up`)
console.log(`parseTimestamp / baseline: ${(strict.valuesPerSecond / baseline.valuesPerSecond).toFixed(2)}x`)
console.log(
  `baseline gives the same result for ${((baselineAgrees / corpus.length) * 100).toFixed(1)}% of the ` +
    `corpus (it ignores the epoch unit rule, quotes and reads no-zone times as local time)`,
)
const loadAverage = loadavg()[0]
if (loadAverage > cpus().length) {
  console.log(`note: load average ${loadAverage.toFixed(1)} on ${cpus().length} cores: other processes competed for the CPU during this run (see values/CPU-s)`)
}
const pass = strict.valuesPerSecond >= TARGET_PER_SECOND && hotPath.valuesPerSecond >= TARGET_PER_SECOND
console.log(
  `${pass ? 'PASS' : 'MISS'}: target ${formatInt(TARGET_PER_SECOND)} values/s; parseTimestamp ` +
    `${formatInt(strict.valuesPerSecond)}, tryParseTimestamp ${formatInt(hotPath.valuesPerSecond)}`,
)

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results')
mkdirSync(resultsDir, {recursive: true})
const file = join(resultsDir, 'parse-ts.json')
writeFileSync(
  file,
  `${JSON.stringify(
    {
      benchmark: 'parse-ts',
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      loadAverage: Number(loadAverage.toFixed(2)),
      corpusSize: corpus.length,
      rounds: ROUNDS,
      targetValuesPerSecond: TARGET_PER_SECOND,
      pass,
      baselineAgreement: baselineAgrees / corpus.length,
      results: results.map((r) => ({
        name: r.name,
        valuesPerSecond: Math.round(r.valuesPerSecond),
        bestRoundMs: Number(r.bestRoundMs.toFixed(2)),
        valuesPerCpuSecond: Math.round(r.valuesPerCpuSecond),
      })),
      ratioToBaseline: Number((strict.valuesPerSecond / baseline.valuesPerSecond).toFixed(3)),
    },
    null,
    2,
  )}\n`,
)
console.log(`results written to ${relative(process.cwd(), file) || file}`)
