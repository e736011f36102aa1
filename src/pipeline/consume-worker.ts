/**
 * One member of a {@link ConsumerPool}, in a worker thread: its own Kafka client, backend and
 * {@link ConsumePipeline}. It tells the pool what it does through messages (the pipeline's and the
 * backend's instrumentation events, its readiness, log lines, and at the end its summary or its
 * failure) and stops cleanly when the pool asks.
 */
import {parentPort, workerData} from 'node:worker_threads'
import {BackendGaveUpError, type BackendEvents, type CountBackend} from '../backends/backend.js'
import {type BackendOptions, createBackend} from '../backends/registry.js'
import {exitCodeFor} from '../cli/exit-codes.js'
import {createKafka, explainKafkaFailure, type Kafka, type KafkaSettings} from '../kafka/client.js'
import {errorChain, errorLine} from '../util/errors.js'
import {type ConsumeOptions, ConsumePipeline, type ConsumeSummary, type PipelineEvents, type StopReason} from './consume-pipeline.js'

/** What a worker is started with (structured-cloned: no functions). */
export interface ConsumeWorkerData {
  kafka: Omit<KafkaSettings, 'log'>
  backendName: string
  backendOptions: BackendOptions
  pipeline: Omit<ConsumeOptions, 'kafka' | 'backend' | 'log' | 'onReport' | 'readLag' | 'countAtStop' | 'stopWhenIdle' | 'startHeld'>
}

/** The failure that ended a worker, as text and the exit code the command would give it. */
export interface WorkerFailure {
  line: string
  exitCode: number
  /** The backend gave up on a write after failed attempts (`--max-retry-time` ran out). */
  backendGaveUp: boolean
}

export type WorkerMessage =
  | {type: 'pipeline'; name: keyof PipelineEvents; args: unknown[]}
  | {type: 'backend'; name: keyof BackendEvents; args: unknown[]}
  | {type: 'status'; ready: {ready: true} | {ready: false; reason: string}; unwrittenEvents: number}
  | {type: 'log'; line: string}
  | {type: 'done'; summary: ConsumeSummary}
  | {type: 'failed'; failure: WorkerFailure}

export type PoolMessage = {type: 'stop'; reason: StopReason} | {type: 'release'}

const STATUS_INTERVAL_MS = 250

const PIPELINE_EVENTS: ReadonlyArray<keyof PipelineEvents> = ['batch-processed', 'committed', 'group-joined', 'rebalancing', 'idle', 'read-to', 'kafka-error']
const BACKEND_EVENTS: ReadonlyArray<keyof BackendEvents> = ['write-failed', 'write-recovered', 'written', 'write-gave-up']

function post(message: WorkerMessage): void {
  parentPort?.postMessage(message)
}

/** Errors do not cross threads with their class: the backend's are sent as their message. */
function cloneable(args: unknown[]): unknown[] {
  return args.map((arg) => (arg instanceof Error ? {name: arg.name, message: arg.message} : arg))
}

async function runWorker(data: ConsumeWorkerData): Promise<void> {
  const log = (line: string) => post({type: 'log', line})
  let kafka: Kafka | undefined
  let backend: CountBackend | undefined
  let pipeline: ConsumePipeline | undefined
  parentPort?.on('message', (message: PoolMessage) => {
    if (message.type === 'stop') pipeline?.stop(message.reason)
    else pipeline?.release()
  })
  try {
    kafka = createKafka({...data.kafka, log})
    backend = await createBackend(data.backendName, data.backendOptions)
    pipeline = new ConsumePipeline({...data.pipeline, kafka, backend, log, readLag: false, countAtStop: false, stopWhenIdle: false, startHeld: true})
    for (const name of PIPELINE_EVENTS) pipeline.on(name, (...args: unknown[]) => post({type: 'pipeline', name, args: cloneable(args)}))
    for (const name of BACKEND_EVENTS) backend.on(name, (...args: unknown[]) => post({type: 'backend', name, args: cloneable(args)}))
    const running = pipeline
    const counted = backend
    const status = setInterval(() => post({type: 'status', ready: running.readiness(), unwrittenEvents: counted.unwrittenEvents}), STATUS_INTERVAL_MS)
    try {
      post({type: 'done', summary: await pipeline.run()})
    } finally {
      clearInterval(status)
    }
  } catch (error) {
    const explained = explainKafkaFailure(kafka, data.kafka.brokers, error)
    const backendGaveUp = errorChain(error).some((cause) => cause instanceof BackendGaveUpError)
    post({type: 'failed', failure: {line: errorLine(explained), exitCode: exitCodeFor(explained), backendGaveUp}})
  } finally {
    parentPort?.close()
  }
}

await runWorker(workerData as ConsumeWorkerData)
