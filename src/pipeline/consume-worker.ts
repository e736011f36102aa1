/**
 * One member of a {@link ConsumerPool}, in a worker thread: its own Kafka client, backend and
 * {@link GroupMember}. It tells the pool what it does through messages (the member's and the
 * backend's instrumentation events, its readiness and silence, log lines, and at the end its stats
 * or its failure), holds its partitions paused until the pool releases it, and stops cleanly when
 * the pool asks.
 */
import {parentPort, workerData} from 'node:worker_threads'
import {BackendGaveUpError, type BackendEvents, type CountBackend} from '../backends/backend.js'
import {type BackendOptions, createBackend} from '../backends/registry.js'
import {exitCodeFor} from '../cli/exit-codes.js'
import {createKafka, type KafkaSettings} from '../kafka/client.js'
import {errorChain, errorLine} from '../util/errors.js'
import {settleWithin} from '../util/async.js'
import {CLOSE_AFTER_FAILURE_MS} from './consume-pipeline.js'
import type {ConsumeStats, StopReason} from './consume-stats.js'
import {createGroupMember, type MemberSettings} from './create-member.js'
import type {GroupMember} from './group-member.js'
import {MEMBER_EVENTS, type PipelineEvents, type Readiness} from './member-events.js'

/** What a worker is started with (structured-cloned: no functions). */
export interface ConsumeWorkerData {
  kafka: Omit<KafkaSettings, 'log'>
  backendName: string
  backendOptions: BackendOptions
  member: MemberSettings
  /** Silence (caught up on what it holds) long enough to tell the pool: `--until-idle`. */
  untilIdleMs?: number
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
  | {type: 'status'; ready: Readiness; unwrittenEvents: number}
  | {type: 'log'; line: string}
  | {type: 'done'; stats: ConsumeStats}
  | {type: 'failed'; failure: WorkerFailure}

export type PoolMessage = {type: 'stop'; reason: StopReason} | {type: 'release'}

const STATUS_INTERVAL_MS = 250

const BACKEND_EVENTS: ReadonlyArray<keyof BackendEvents> = ['write-failed', 'write-recovered', 'written', 'write-gave-up']

function post(message: WorkerMessage): void {
  parentPort?.postMessage(message)
}

/** Errors do not cross threads with their class: the backend's are sent as their message. */
function cloneable(args: unknown[]): unknown[] {
  return args.map((arg) => (arg instanceof Error ? {name: arg.name, message: arg.message} : arg))
}

/** Tells the pool when the member has been silent for `untilIdleMs`, and when it has work again. */
function watchSilence(member: GroupMember, untilIdleMs: number | undefined): NodeJS.Timeout | undefined {
  if (untilIdleMs === undefined) return undefined
  let wasIdle = false
  return setInterval(
    () => {
      const idle = member.silentFor(untilIdleMs)
      if (idle !== wasIdle) post({type: 'pipeline', name: 'idle', args: [(wasIdle = idle)]})
    },
    Math.min(250, Math.max(10, untilIdleMs / 4)),
  )
}

async function runWorker(data: ConsumeWorkerData): Promise<void> {
  const log = (line: string) => post({type: 'log', line})
  let backend: CountBackend | undefined
  let member: GroupMember | undefined
  parentPort?.on('message', (message: PoolMessage) => {
    if (message.type === 'stop') member?.stop(message.reason)
    else member?.resume()
  })
  try {
    const kafka = createKafka({...data.kafka, log})
    backend = await createBackend(data.backendName, data.backendOptions)
    member = createGroupMember(kafka, backend, data.member, log)
    // The pool releases its members once they hold every partition between them.
    member.pause()
    for (const name of MEMBER_EVENTS) member.on(name, (...args: unknown[]) => post({type: 'pipeline', name, args: cloneable(args)}))
    for (const name of BACKEND_EVENTS) backend.on(name, (...args: unknown[]) => post({type: 'backend', name, args: cloneable(args)}))
    const running = member
    const counted = backend
    const timers = [
      setInterval(() => post({type: 'status', ready: running.readiness(), unwrittenEvents: counted.unwrittenEvents}), STATUS_INTERVAL_MS),
      watchSilence(member, data.untilIdleMs),
    ]
    try {
      const {stats} = await member.run()
      await backend.close().catch((error: Error) => log(`closing backend: ${error.message}`))
      post({type: 'done', stats})
    } finally {
      for (const timer of timers) clearInterval(timer)
    }
  } catch (error) {
    await settleWithin(backend?.close() ?? Promise.resolve(), CLOSE_AFTER_FAILURE_MS).catch(() => undefined)
    const backendGaveUp = errorChain(error).some((cause) => cause instanceof BackendGaveUpError)
    post({type: 'failed', failure: {line: errorLine(error), exitCode: exitCodeFor(error), backendGaveUp}})
  } finally {
    parentPort?.close()
  }
}

await runWorker(workerData as ConsumeWorkerData)
