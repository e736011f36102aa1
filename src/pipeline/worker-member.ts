import {EventEmitter} from 'node:events'
import {Worker} from 'node:worker_threads'
import type {BackendEvents} from '../backends/backend.js'
import {EXIT_FAILURE} from '../cli/exit-codes.js'
import type {ConsumeStats, StopReason} from './consume-stats.js'
import type {ConsumeWorkerData, PoolMessage, WorkerFailure, WorkerMessage} from './consume-worker.js'
import type {PipelineEvents, Readiness} from './member-events.js'

export interface WorkerMemberEvents {
  /** One of the member's instrumentation events, as it sent it. */
  pipeline: [name: keyof PipelineEvents, args: unknown[]]
  /** One of its backend's events. */
  backend: [name: keyof BackendEvents, args: unknown[]]
  log: [line: string]
  /** It failed, or its thread crashed or exited without an end. */
  failed: [failure: WorkerFailure]
}

/**
 * The pool's side of one {@link GroupMember} in a worker thread: starts the thread, keeps what the
 * member last told of itself (readiness, unwritten events, its stats at the end), passes its
 * events on, and asks it to start fetching or to stop.
 */
export class WorkerMember extends EventEmitter<WorkerMemberEvents> {
  ready: Readiness = {ready: false, reason: 'starting'}
  unwrittenEvents = 0
  /** Partitions held since its last join; 0 while rebalancing. */
  partitions = 0
  joined = false
  /** Silent for `--until-idle` (the pool checks the group's lag before stopping). */
  idle = false
  /** Its backend's writes are failing. */
  backendFailing = false
  /** Its stats once it stopped cleanly. */
  stats?: ConsumeStats
  /** Resolves when the thread has exited. */
  readonly exited: Promise<void>
  private readonly worker: Worker

  constructor(
    readonly index: number,
    data: ConsumeWorkerData,
  ) {
    super()
    const worker = new Worker(new URL('./consume-worker.js', import.meta.url), {workerData: data})
    this.worker = worker
    let finished = false
    this.exited = new Promise<void>((resolve) => {
      worker.on('message', (message: WorkerMessage) => {
        if (message.type === 'done' || message.type === 'failed') {
          finished = true
          // Disconnected and closed by now; a client connection kafkajs leaves open would keep the thread alive.
          void worker.terminate()
        }
        this.handle(message)
      })
      worker.on('error', (error) => this.failed({line: `crashed: ${error.message}`, exitCode: EXIT_FAILURE, backendGaveUp: false}))
      worker.on('exit', (code) => {
        if (!finished) this.failed({line: `exited unexpectedly (code ${code})`, exitCode: EXIT_FAILURE, backendGaveUp: false})
        resolve()
      })
    })
  }

  release(): void {
    this.worker.postMessage({type: 'release'} satisfies PoolMessage)
  }

  stop(reason: StopReason): void {
    this.worker.postMessage({type: 'stop', reason} satisfies PoolMessage)
  }

  private handle(message: WorkerMessage): void {
    switch (message.type) {
      case 'pipeline': {
        this.emit('pipeline', message.name, message.args)
        break
      }
      case 'backend': {
        if (message.name === 'write-failed') this.backendFailing = true
        if (message.name === 'write-recovered') this.backendFailing = false
        this.emit('backend', message.name, message.args)
        break
      }
      case 'status': {
        this.ready = message.ready
        this.unwrittenEvents = message.unwrittenEvents
        break
      }
      case 'log': {
        this.emit('log', message.line)
        break
      }
      case 'done': {
        this.stats = message.stats
        this.ready = {ready: false, reason: 'stopped'}
        break
      }
      case 'failed': {
        this.failed(message.failure)
        break
      }
    }
  }

  private failed(failure: WorkerFailure): void {
    this.ready = {ready: false, reason: 'failed'}
    this.emit('failed', failure)
  }
}
