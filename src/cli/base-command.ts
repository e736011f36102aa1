import {Command} from '@oclif/core'
import {errorLine} from '../util/errors.js'
import {exitCodeFor} from './exit-codes.js'
import {writeStderr} from './output.js'

/** What every ipc command shares: its exit codes kept under --json, and one way to fail. */
export abstract class IpcCommand extends Command {
  /**
   * Under --json oclif would print every error as JSON on stdout and exit 1. An error that carries
   * its exit code (oclif's exit, a flag that does not parse: 2) goes to oclif's handler as it does
   * without --json: its message on stderr, and that code.
   */
  protected override async catch(error: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    if (typeof error.oclif?.exit === 'number') throw error
    return super.catch(error)
  }

  /** Writes one line `ipc <command>: <error>` to stderr and exits with the error's exit code (or `exitCode`). */
  protected failWith(error: unknown, options: {prefix?: string; suffix?: string; exitCode?: number} = {}): never {
    const line = `${options.prefix ?? ''}${errorLine(error)}${options.suffix ?? ''}`
    writeStderr(`ipc ${this.id}: ${line.replaceAll(/\s*\n\s*/g, ' ')}`)
    this.exit(options.exitCode ?? exitCodeFor(error))
  }
}
