import {Command, Errors} from '@oclif/core'
import {BackendError, type CountBackend} from '../backends/backend.js'
import {backendOptionsFromFlags, createBackend} from '../backends/registry.js'
import {formatDuration} from '../duration.js'
import {backendFlags, durationFlag} from '../flags.js'
import {IdentifierError} from '../identifiers.js'

/** Exit codes of `ipc count` (also in its help). */
export const EXIT_USAGE = 2
export const EXIT_BACKEND = 3

export interface CountResult {
  unique_device_ip_count: number
  backend: string
  exact: boolean
}

/** The count could not be produced; `exitCode` says why (usage or backend). */
class CountFailure extends Error {
  override name = 'CountFailure'
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message)
  }
}

export default class Count extends Command {
  static override summary = 'Print the number of unique device IPs stored in a backend.'

  static override description = `Prints only the number and a newline, so scripts can read it; --json prints {"unique_device_ip_count", "backend", "exact"} instead.
redis reports the HyperLogLog estimate (standard error 0.81%); clickhouse the exact count over its events table (the database and table are created if missing); memory always prints 0, since a fresh process has counted nothing.

Exit codes:
0 = the count was printed.
2 = invalid flags, URL or names (database, table, key).
3 = the backend is unreachable, failed, or did not answer within --timeout: one line on stderr, nothing on stdout.`

  static override examples = [
    {description: 'Unique devices in the default Redis HyperLogLog:', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Exact count from ClickHouse, as JSON:', command: '<%= config.bin %> <%= command.id %> --backend clickhouse --json'},
    {
      description: 'In a shell script (stops the script when the backend cannot be read within 2 seconds):',
      command: 'n=$(<%= config.bin %> <%= command.id %> --backend clickhouse --timeout 2s) || exit 1',
    },
  ]

  static override enableJsonFlag = true

  static override flags = {
    ...backendFlags,
    timeout: durationFlag({
      description: 'Give up with exit code 3 when the backend has not answered within this time (also the timeout of each request).',
      default: 5000,
      defaultHelp: async () => '5s',
    }),
  }

  async run(): Promise<CountResult> {
    const {flags} = await this.parse(Count)
    let backend: CountBackend
    try {
      backend = await createBackend(flags.backend, {...backendOptionsFromFlags(flags), requestTimeoutMs: flags.timeout})
    } catch (error) {
      return this.fail(new CountFailure(error instanceof Error ? error.message : String(error), EXIT_USAGE))
    }

    let count: number
    try {
      count = await withinDeadline(readCount(backend), flags.timeout, () => {
        return new CountFailure(`no answer from ${backend.name} at ${backend.location} within ${formatDuration(flags.timeout)}`, EXIT_BACKEND)
      })
    } catch (error) {
      // The process exits with the failure; closing is best effort and not awaited.
      backend.close().catch(() => {})
      if (error instanceof CountFailure) return this.fail(error)
      if (error instanceof IdentifierError) return this.fail(new CountFailure(error.message, EXIT_USAGE))
      if (error instanceof BackendError) return this.fail(new CountFailure(error.message, EXIT_BACKEND))
      throw error
    }

    const result: CountResult = {unique_device_ip_count: count, backend: backend.name, exact: backend.exact}
    this.log(String(count))
    return result
  }

  /** Exit errors pass straight through; oclif would otherwise print them as JSON with --json. */
  protected override async catch(error: Error & {exitCode?: number}): Promise<unknown> {
    if (error instanceof Errors.ExitError) throw error
    return super.catch(error)
  }

  private fail(failure: CountFailure): never {
    process.stderr.write(`ipc count: ${failure.message.replaceAll(/\s*\n\s*/g, ' ')}\n`)
    return this.exit(failure.exitCode)
  }
}

async function readCount(backend: CountBackend): Promise<number> {
  await backend.connect()
  const count = await backend.count()
  await backend.close()
  return count
}

async function withinDeadline<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms)
  })
  try {
    return await Promise.race([work, deadline])
  } finally {
    clearTimeout(timer)
  }
}
