import {Command, Errors} from '@oclif/core'
import {errorLine} from '../util/errors.js'
import {exitCodeFor} from './exit-codes.js'
import {writeStderr} from './output.js'

/** What every ipc command shares: its exit codes kept under --json, and one way to fail. */
export abstract class IpcCommand extends Command {
  // Under --json oclif would turn every exit code into 1 and print the exit as JSON; keep ours.
  protected override async catch(error: Error & {exitCode?: number}): Promise<unknown> {
    if (error instanceof Errors.ExitError) throw error
    return super.catch(error)
  }

  /** Writes `ipc <command>: <error>` to stderr and exits with the error's exit code (or `exitCode`). */
  protected failWith(error: unknown, options: {prefix?: string; suffix?: string; exitCode?: number} = {}): never {
    writeStderr(`ipc ${this.id}: ${options.prefix ?? ''}${errorLine(error)}${options.suffix ?? ''}`)
    this.exit(options.exitCode ?? exitCodeFor(error))
  }
}
