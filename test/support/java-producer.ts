import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, readFileSync, readdirSync} from 'node:fs'
import {mkdir, mkdtemp, rename, rm} from 'node:fs/promises'
import {homedir} from 'node:os'
import {delimiter, dirname} from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {fileURLToPath} from 'node:url'

/**
 * Topics written by Apache Kafka's own Java producer (kafka-clients), and the codecs of the batches
 * the broker stored, as Kafka's DumpLogSegments reads them. test/fixtures/java/JavaProducer.java is
 * compiled against the jars of scripts/services (the broker's own) into the cache folder, once per
 * Kafka version and source.
 */

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const STATE_DIR = process.env.IPC_STATE_DIR ?? `${REPO_ROOT}.ipc-services`
const SOURCE = `${REPO_ROOT}test/fixtures/java/JavaProducer.java`
/** Small heap, C1 only and the class-data archive: the JVM starts in well under a second. */
const JVM_OPTIONS = [
  '-Xmx256m',
  '-XX:TieredStopAtLevel=1',
  '-Xshare:auto',
  // scripts/kafka/pom.xml puts log4j2 behind slf4j; without a configuration file it logs to stdout.
  '-Dlog4j2.level=error',
]
const STDIN_CHUNK = 64 * 1024

export class JavaFixtureError extends Error {
  override name = 'JavaFixtureError'
}

export class JavaProducerError extends JavaFixtureError {
  override name = 'JavaProducerError'
}

export interface JavaProduceOptions {
  brokers: readonly string[]
  topic: string
  /** none (default), gzip, snappy, lz4 or zstd. */
  compression?: string
  idempotent?: boolean
  /** Makes the producer transactional: `#begin`, `#commit` and `#abort` lines control the transactions. */
  transactionalId?: string
  /** Headers `ipc-fixture: java` and `seq: <0-based record number>` on every record. */
  headers?: boolean
  batchSize?: number
  lingerMs?: number
  /** `KEY<TAB>VALUE` lines (see JavaProducer.java): an array of lines without line ends, or text. */
  lines: string[] | string
}

export interface JavaProduceResult {
  sent: number
  /** Records of committed transactions; without transactions, all of them. */
  committed: number
  aborted: number
  compression: string
}

interface KafkaJars {
  version: string
  lib: string
  cacheDir: string
}

interface ProcessResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** The jars of the Kafka version scripts/services installs, as scripts/services.d/kafka.sh finds them. */
function kafkaJars(): KafkaJars {
  const cacheDir = process.env.IPC_CACHE_DIR || `${process.env.XDG_CACHE_HOME || `${homedir()}/.cache`}/ipc`
  const pom = readFileSync(`${REPO_ROOT}scripts/kafka/pom.xml`, 'utf8')
  const version = process.env.IPC_KAFKA_VERSION || /<kafka\.version>(.*?)<\/kafka\.version>/.exec(pom)?.[1]
  if (!version) throw new JavaFixtureError('no <kafka.version> in scripts/kafka/pom.xml')
  const lib = `${cacheDir}/kafka-${version}/lib`
  if (!existsSync(`${lib}/.resolved`)) throw new JavaFixtureError(`the jars of Kafka ${version} are not in ${lib} (run: bash scripts/services install)`)
  return {version, lib, cacheDir}
}

/** Runs a program to its end; `input` is written to its stdin with backpressure. */
function runProcess(command: string, args: readonly string[], input?: Iterable<string | Buffer>): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', (error: NodeJS.ErrnoException) => {
      const hint = command === 'javac' ? 'the Java fixture needs a JDK: apt-get install openjdk-17-jdk-headless' : 'run: bash scripts/services install'
      reject(error.code === 'ENOENT' ? new JavaFixtureError(`${command} is not installed (${hint})`) : error)
    })
    child.on('close', (code, signal) => resolve({code, signal, stdout, stderr}))
    // Fails with EPIPE when the program ends before reading everything: its status and stderr say why.
    if (input) pipeline(Readable.from(input, {objectMode: false}), child.stdin!).catch(() => undefined)
  })
}

/** Builds a folder once: into a temporary sibling renamed at the end, so that concurrent runs are safe. */
async function buildOnce(out: string, build: (folder: string) => Promise<void>): Promise<void> {
  if (existsSync(out)) return
  await mkdir(dirname(out), {recursive: true})
  const temporary = await mkdtemp(`${out}.tmp-`)
  try {
    await build(temporary)
    await rename(temporary, out).catch((error: unknown) => {
      if (!existsSync(out)) throw error
    })
  } finally {
    await rm(temporary, {recursive: true, force: true})
  }
}

/** Compiles JavaProducer.java if needed; its class path (compiled class and Kafka's jars) for `java -cp`. */
export async function javaProducerClasspath(): Promise<string> {
  const {version, lib, cacheDir} = kafkaJars()
  const digest = createHash('sha256').update(readFileSync(SOURCE)).digest('hex').slice(0, 12)
  const out = `${cacheDir}/java-fixture/${version}-${digest}`
  await buildOnce(out, async (folder) => {
    const result = await runProcess('javac', ['--release', '17', '-encoding', 'UTF-8', '-cp', `${lib}/*`, '-d', folder, SOURCE])
    if (result.code !== 0) throw new JavaFixtureError(`javac ${SOURCE} failed (${result.code ?? result.signal}):\n${result.stderr.trim()}`)
  })
  return `${out}${delimiter}${lib}/*`
}

function* stdinChunks(lines: string[] | string): Generator<string | Buffer> {
  if (typeof lines === 'string') {
    // Cut as bytes: a cut string could split a surrogate pair.
    const bytes = Buffer.from(lines)
    for (let start = 0; start < bytes.length; start += STDIN_CHUNK) yield bytes.subarray(start, start + STDIN_CHUNK)
    return
  }
  let chunk = ''
  for (const line of lines) {
    chunk += `${line}\n`
    if (chunk.length >= STDIN_CHUNK) {
      yield chunk
      chunk = ''
    }
  }
  if (chunk) yield chunk
}

function parseResult(stdout: string): JavaProduceResult {
  const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Partial<JavaProduceResult>
  const {sent, committed, aborted, compression} = result
  if (typeof sent !== 'number' || typeof committed !== 'number' || typeof aborted !== 'number' || typeof compression !== 'string') {
    throw new JavaProducerError(`JavaProducer printed no result: ${stdout.trim()}`)
  }
  return {sent, committed, aborted, compression}
}

/** Writes `options.lines` to a topic with Kafka's Java producer (acks=all); the counts it reports. */
export async function javaProduce(options: JavaProduceOptions): Promise<JavaProduceResult> {
  const {topic, lines} = options
  if (Array.isArray(lines) && lines.some((line) => /[\r\n]/.test(line))) throw new JavaProducerError(`a line for ${topic} holds a line break`)
  const args = [...JVM_OPTIONS, '-cp', await javaProducerClasspath(), 'JavaProducer', '--brokers', options.brokers.join(','), '--topic', topic]
  if (options.compression) args.push('--compression', options.compression)
  if (options.idempotent) args.push('--idempotent')
  if (options.transactionalId) args.push('--transactional-id', options.transactionalId)
  if (options.headers) args.push('--headers')
  if (options.batchSize !== undefined) args.push('--batch-size', String(options.batchSize))
  if (options.lingerMs !== undefined) args.push('--linger-ms', String(options.lingerMs))
  const result = await runProcess('java', args, stdinChunks(lines))
  if (result.code !== 0) throw new JavaProducerError(`JavaProducer to ${topic} failed (${result.code ?? result.signal}): ${result.stderr.trim()}`)
  return parseResult(result.stdout)
}

/** The `*.log` segment files of a partition on the single test node, oldest first. */
export function segmentFiles(topic: string, partition: number): string[] {
  const folder = `${STATE_DIR}/kafka/kafka/data/${topic}-${partition}`
  if (!existsSync(folder)) throw new JavaFixtureError(`no folder ${folder}: is ${topic} a topic of the single test node?`)
  return readdirSync(folder)
    .filter((name) => name.endsWith('.log'))
    .sort()
    .map((name) => `${folder}/${name}`)
}

/**
 * How to run Kafka's DumpLogSegments: kafka.tools.DumpLogSegments of the broker's jar (Kafka 3.x),
 * or, since KAFKA-14579 moved it (Kafka 4.4 has it there), org.apache.kafka.tools.DumpLogSegments of
 * the kafka-tools jar, which the broker does not need: Maven fetches that one jar once.
 */
async function dumpLogSegmentsCommand({version, lib, cacheDir}: KafkaJars): Promise<string[]> {
  const brokerJar = readdirSync(lib).find((name) => /^kafka_2\.13-.*\.jar$/.test(name))
  // A jar (zip) holds the names of its files uncompressed.
  if (brokerJar && readFileSync(`${lib}/${brokerJar}`).includes('kafka/tools/DumpLogSegments.class')) {
    return ['-cp', `${lib}/*`, 'kafka.tools.DumpLogSegments']
  }
  const tools = `${cacheDir}/java-fixture/kafka-tools-${version}`
  await buildOnce(tools, async (folder) => {
    const result = await runProcess('mvn', ['-B', '-q', 'dependency:copy', `-Dartifact=org.apache.kafka:kafka-tools:${version}`, `-DoutputDirectory=${folder}`])
    if (result.code !== 0)
      throw new JavaFixtureError(`Maven could not fetch org.apache.kafka:kafka-tools:${version}:\n${`${result.stdout}${result.stderr}`.trim()}`)
  })
  return ['-cp', `${tools}/*${delimiter}${lib}/*`, 'org.apache.kafka.tools.DumpLogSegments']
}

/**
 * The compression codec of every record batch stored for a partition on the single test node, in
 * log order, from the `compresscodec:` of DumpLogSegments's batch lines (transaction markers, the
 * control batches, are uncompressed: `none`).
 */
export async function dumpLogSegmentCodecs(topic: string, partition: number): Promise<string[]> {
  const files = segmentFiles(topic, partition)
  if (files.length === 0) return []
  const command = await dumpLogSegmentsCommand(kafkaJars())
  const result = await runProcess('java', [...JVM_OPTIONS, ...command, '--files', files.join(',')])
  if (result.code !== 0)
    throw new JavaFixtureError(`DumpLogSegments of ${topic}-${partition} failed (${result.code ?? result.signal}): ${result.stderr.trim()}`)
  return [...result.stdout.matchAll(/^baseOffset: .* compresscodec: (\S+)/gm)].map((match) => match[1])
}
