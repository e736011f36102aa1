import {EXIT_FORCED} from './exit-codes.js'
import {writeStderr} from './output.js'

/** The signals that ask a command to stop. */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const

/** Where signals come from: `process`, or an emitter standing in for it. */
export interface SignalSource {
  on(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown
  off(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown
}

export interface StopSignalOptions {
  /** The command's name, which starts each line: `ipc <command>: …`. */
  command: string
  /** What the first signal starts, for its line, e.g. `flushing and committing`. */
  stopping: string
  /** What a forced exit skips, for the second signal's line, e.g. `without committing`. */
  forcing: string
  /** Called on the first signal: begin the clean stop. */
  onFirst: (signal: NodeJS.Signals) => void
  /** True when the command is already stopping on its own (`--until-idle`): a signal then forces at once. */
  alreadyStopping?: () => boolean
  /** Writes one line to stderr. Default: writeStderr. */
  log?: (line: string) => void
  /** Default: `process`. */
  source?: SignalSource
  /** Default: `process.exit`. */
  exit?: (code: number) => void
}

/**
 * The one way a command stops on SIGINT/SIGTERM: the first signal calls `onFirst` and says
 * `ipc <command>: <signal> received, stopping: <stopping> (signal again to force)`; the second says
 * `ipc <command>: second signal, exiting <forcing>` and exits with EXIT_FORCED (130) at once.
 * Returns the function that removes the handlers.
 */
export function onStopSignals(options: StopSignalOptions): () => void {
  const {command, source = process, log = writeStderr, exit = (code: number) => process.exit(code)} = options
  let received = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (received || options.alreadyStopping?.()) {
      log(`ipc ${command}: second signal, exiting ${options.forcing}`)
      exit(EXIT_FORCED)
      return
    }
    received = true
    log(`ipc ${command}: ${signal} received, stopping: ${options.stopping} (signal again to force)`)
    options.onFirst(signal)
  }
  for (const signal of STOP_SIGNALS) source.on(signal, onSignal)
  return () => {
    for (const signal of STOP_SIGNALS) source.off(signal, onSignal)
  }
}

/** How long a command that has finished may take to exit on its own before it is made to. */
export const EXIT_GRACE_MS = 2000

/**
 * Makes a finished command exit within EXIT_GRACE_MS even when a client library still holds a
 * socket or timer open after being closed (kafkajs 2.2.4 can leave a coordinator connection open
 * after a clean disconnect). Everything is flushed and printed by then; the timer is unref'd, so it
 * fires only if something else keeps the process alive.
 */
export function exitSoonIfHeldOpen(command: string, log: (line: string) => void = writeStderr): void {
  setTimeout(() => {
    log(`ipc ${command}: done; exiting although a client connection is still open`)
    process.exit(process.exitCode ?? 0)
  }, EXIT_GRACE_MS).unref()
}
