import {Flags} from '@oclif/core'
import {IpcCommand} from '../cli/base-command.js'
import {BackendError, type CountBackend, supportsRangeCounts} from '../backends/backend.js'
import {createBackend} from '../backends/registry.js'
import {backendOptionsFromFlags, backendScalingFlags} from '../cli/backend-flags.js'
import {DEFAULT_COUNT_TIMEOUT_MS} from '../cli/defaults.js'
import {EXIT_USAGE} from '../cli/exit-codes.js'
import {
  BUCKET_SIZES,
  type BucketSize,
  buildCountQuery,
  type CountQuery,
  CountQueryError,
  type CountQueryJson,
  hasQueryOptions,
  isBounded,
  type ParsedCountQuery,
  queryJson,
  type SeriesPoint,
} from '../query/count-query.js'
import {formatDuration} from '../util/duration.js'
import {backendFlags, durationDefault, durationFlag} from '../cli/flags.js'
import {formatInt, isInteractive, renderTable} from '../cli/output.js'
import {formatIsoMillis} from '../events/timestamp.js'
import {withTimeout} from '../util/async.js'

export interface CountResult {
  unique_device_ip_count: number
  backend: string
  exact: boolean
}

export interface SeriesPointJson {
  /** Start of the UTC hour or day. */
  bucket: string
  count: number
}

/** `--json` output when a range, error codes or a series was asked for. */
export interface QueryCountResult extends CountResult, CountQueryJson {
  by?: BucketSize
  series?: SeriesPointJson[]
}

interface Counted {
  count: number
  series?: SeriesPoint[]
}

export default class Count extends IpcCommand {
  static override summary = 'Print the number of unique device IPs stored in a backend, all-time or for a time range and error codes.'

  static override description = [
    'Prints only the number and a newline, so scripts can read it; --json prints {"unique_device_ip_count", "backend", "exact"} instead.',
    'redis reports the HyperLogLog estimate (standard error 0.81%); clickhouse the exact count over its events ' +
      'table (the database and table are created if missing); memory always prints 0, since a fresh process has ' +
      'counted nothing.',
    '',
    'Time ranges use the event time (the parsed timestamp of each event, not when it arrived) and are half-open: ' +
      '[--since, --until). --since and --until take an ISO 8601 date-time (no zone means UTC), a date (midnight UTC), ' +
      'an epoch number, "now", or a time before now such as 30m, 24h, 7d or 2w; --until defaults to now. clickhouse ' +
      'and memory apply the bounds to the millisecond; redis counts whole UTC hours (the range is widened outward to ' +
      'whole hours), and only as far back as its hourly buckets are kept (ipc consume --redis-bucket-ttl, default 30 ' +
      'days).',
    '--error-code counts the devices that reported any of the given codes (repeat the flag or separate codes with ' +
      'commas; write negative codes as --error-code=-5).',
    '--by hour|day prints one line per UTC hour or day of the range: a table on a terminal, "bucket count" lines ' +
      'when piped; with --json the output adds "series". With any of these flags --json also shows the query: ' +
      '"since", "until", "error_codes".',
    '',
    'Exit codes:',
    '0 = the count was printed.',
    '2 = invalid flags, URL or names (database, table, key), or a query the backend cannot answer.',
    '3 = the backend is unreachable, failed, or did not answer within --timeout: one line on stderr, nothing on stdout.',
  ].join('\n')

  static override examples = [
    {description: 'Unique devices in the default Redis HyperLogLog:', command: '<%= config.bin %> <%= command.id %>'},
    {description: 'Exact count from ClickHouse, as JSON:', command: '<%= config.bin %> <%= command.id %> --backend clickhouse --json'},
    {
      description: 'In a shell script (stops the script when the backend cannot be read within 2 seconds):',
      command: 'n=$(<%= config.bin %> <%= command.id %> --backend clickhouse --timeout 2s) || exit 1',
    },
    {description: 'Devices seen in the last 24 hours, per hour:', command: '<%= config.bin %> <%= command.id %> --backend clickhouse --since 24h --by hour'},
    {
      description: 'Devices that reported error code 3 or 7 on one day, per day, as JSON:',
      command: '<%= config.bin %> <%= command.id %> --since 2024-09-18 --until 2024-09-19 --error-code 3,7 --by day --json',
    },
  ]

  static override enableJsonFlag = true

  static override flags = {
    ...backendFlags,
    ...backendScalingFlags,
    since: Flags.string({description: 'Count only events at or after this time (ISO 8601, date, epoch, or before now: 24h, 7d).'}),
    until: Flags.string({description: 'Count only events before this time (same forms as --since). Default: now, when --since is given.'}),
    'error-code': Flags.string({
      description: 'Count only devices that reported this error code (-128..127); repeatable, or comma-separated.',
      multiple: true,
      delimiter: ',',
    }),
    by: Flags.string({description: 'Also count per UTC hour or day of the range (needs --since).', options: [...BUCKET_SIZES]}),
    timeout: durationFlag({
      description: 'Give up with exit code 3 when the backend has not answered within this time (also the timeout of each request).',
      ...durationDefault(DEFAULT_COUNT_TIMEOUT_MS),
    }),
  }

  async run(): Promise<CountResult | QueryCountResult> {
    const {flags} = await this.parse(Count)
    const input = {since: flags.since, until: flags.until, errorCodes: flags['error-code'], by: flags.by}
    const withQuery = hasQueryOptions(input)
    let parsed: ParsedCountQuery | undefined
    let backend: CountBackend
    try {
      if (withQuery) parsed = buildCountQuery(input, Date.now())
      backend = await createBackend(flags.backend, {...backendOptionsFromFlags(flags), requestTimeoutMs: flags.timeout})
    } catch (error) {
      this.failWith(error, {exitCode: EXIT_USAGE})
    }

    let counted: Counted
    try {
      counted = await withTimeout(readCount(backend, parsed), flags.timeout, () => {
        const message = `no answer from ${backend.name} at ${backend.location} within ${formatDuration(flags.timeout)}`
        return new BackendError(message, backend.name, backend.location, {retriable: true})
      })
    } catch (error) {
      // The process exits with the failure; closing is best effort and not awaited.
      backend.close().catch(() => {})
      this.failWith(error)
    }

    const result: CountResult = {unique_device_ip_count: counted.count, backend: backend.name, exact: backend.exact}
    if (!parsed) {
      this.log(String(counted.count))
      return result
    }
    const {query, by} = parsed
    const {series} = counted
    if (!by || !series) {
      this.log(String(counted.count))
      return {...result, ...queryJson(query)}
    }
    this.printSeries(query, by, counted.count, series)
    return {...result, ...queryJson(query), by, series: series.map((point) => ({bucket: formatIsoMillis(point.startMs), count: point.count}))}
  }

  /** One line per bucket when piped; a table, then the range and codes, on a terminal. */
  private printSeries(query: CountQuery, by: BucketSize, total: number, series: readonly SeriesPoint[]): void {
    if (!isInteractive()) {
      for (const point of series) this.log(`${formatIsoMillis(point.startMs)} ${point.count}`)
      return
    }
    const label = (ms: number) => (by === 'hour' ? formatIsoMillis(ms).slice(0, 16).replace('T', ' ') : formatIsoMillis(ms).slice(0, 10))
    const rows = series.map((point) => [label(point.startMs), formatInt(point.count)])
    rows.push(['whole range', formatInt(total)])
    this.log(renderTable([`${by} (UTC)`, 'unique devices'], rows))
    const codes = query.errorCodes.length > 0 ? `, error codes ${query.errorCodes.join(', ')}` : ''
    const range = isBounded(query) ? `[${formatIsoMillis(query.sinceMs)}, ${formatIsoMillis(query.untilMs)})` : ''
    this.log(`${range}${codes}`)
  }
}

async function readCount(backend: CountBackend, parsed: ParsedCountQuery | undefined): Promise<Counted> {
  await backend.connect()
  let counted: Counted
  if (!parsed) {
    counted = {count: await backend.count()}
  } else {
    if (!supportsRangeCounts(backend)) {
      throw new CountQueryError(`the ${backend.name} backend cannot count time ranges or error codes`)
    }
    const {query, by} = parsed
    const [count, series] = await Promise.all([
      backend.countUnique(query),
      by && isBounded(query) ? backend.countSeries(query, by) : Promise.resolve(undefined),
    ])
    counted = {count, series}
  }
  await backend.close()
  return counted
}
