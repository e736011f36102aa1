import {Args} from '@oclif/core'
import {createInterface} from 'node:readline'
import {positionalValues} from '../cli/argv.js'
import {IpcCommand} from '../cli/base-command.js'
import {EXIT_FAILURE, EXIT_USAGE} from '../cli/exit-codes.js'
import {isInteractive, renderTable} from '../cli/output.js'
import {isTimestampFailure, tryParseTimestamp, type TimestampFormat} from '../events/timestamp.js'

export type ParseTsResult = {input: string; output: string; format: TimestampFormat} | {input: string; error: string}

/** Plain output is written in chunks of about this many characters. */
const WRITE_CHUNK = 64 * 1024

export default class ParseTs extends IpcCommand {
  static override summary = 'Parse timestamps (ISO 8601 or epoch numbers) into UTC ISO 8601 with milliseconds.'

  static override description = [
    'Each value becomes YYYY-MM-DDTHH:mm:ss.sssZ (UTC, three fraction digits; extra precision is truncated, never ' +
      'rounded up), exactly as the consumer reads event timestamps.',
    '',
    'Accepted shapes (surrounding whitespace and one pair of \' or " quotes are stripped):',
    '',
    'ISO 8601 / RFC 3339 date-times such as 2021-12-03T16:15:30.235Z, 2021-12-03 16:15:30+02:00 or ' +
      '2021-12-03T16:15. Between date and time T, t or a space; seconds optional (then without a fraction); a ' +
      "fraction of 1 to 9 digits; zone Z, z, ±HH:MM, ±HHMM or none. No zone means UTC, never the machine's time zone.",
    '',
    'Epoch numbers: integers or decimals, optional leading minus. The unit follows from the absolute value v: v < ' +
      '1e11 seconds; 1e11 <= v < 1e14 milliseconds; 1e14 <= v < 1e17 microseconds; v >= 1e17 nanoseconds.',
    '',
    'Rejected, with the reason: impossible dates and times (2021-02-30, hour 24, minute 60, leap second 60, month ' +
      '13, day 00), zone offsets beyond 23:59, years outside 0000-9999, empty values, anything else.',
    '',
    'Values come from the arguments, or one per line from stdin when there are none (streamed: any number of ' +
      'lines). On a terminal the results are a table. Piped, each value gives one line on stdout; a value that fails ' +
      'gives an empty stdout line (so the output stays line-aligned with the input, e.g. for paste) and "error: ' +
      '<input>: <reason>" on stderr. Exit code 0 when every value parsed, 1 when any failed.',
  ].join('\n')

  static override examples = [
    {description: 'An epoch in milliseconds, quoted as it appears in an event.', command: `<%= config.bin %> <%= command.id %> "'1726668850124'"`},
    {
      description: 'Several values: epoch seconds, a decimal, ISO with and without a zone.',
      command: '<%= config.bin %> <%= command.id %> 1726667942 1726668850.124 2021-12-03T16:15:30.235+02:00 "2021-12-03 16:15:30"',
    },
    {
      description: 'One value per line from stdin; failures go to stderr, results stay line-aligned.',
      command: 'cut -f1 events.tsv | <%= config.bin %> <%= command.id %> > parsed.txt',
    },
    {description: 'JSON for scripts.', command: '<%= config.bin %> <%= command.id %> 2021-02-30T00:00:00 1726668850124 --json'},
    {description: 'A negative epoch: one day before 1970.', command: '<%= config.bin %> <%= command.id %> -86400'},
  ]

  static override strict = false
  static override enableJsonFlag = true

  static override args = {
    // ignoreStdin: stdin is streamed line by line by run(), not read whole by the parser.
    values: Args.string({description: 'Timestamps to parse. When none are given, reads one per line from stdin.', ignoreStdin: true}),
  }

  async run(): Promise<ParseTsResult[] | undefined> {
    await this.parse(ParseTs)
    const values = positionalValues(this.argv, ['--json'])
    if (values.length === 0 && process.stdin.isTTY) {
      this.failWith('no values: give timestamps as arguments, or pipe them on stdin one per line', {exitCode: EXIT_USAGE})
    }

    if (!this.jsonEnabled() && !isInteractive(process.stdout)) {
      if (await writePlain(values)) process.exitCode = EXIT_FAILURE
      return undefined
    }

    const results: ParseTsResult[] = []
    const collect = (input: string) => results.push(toResult(input))
    if (values.length > 0) values.forEach(collect)
    else await forEachStdinLine(collect)
    const failures = results.filter((result) => 'error' in result).length
    if (failures > 0) process.exitCode = EXIT_FAILURE
    if (this.jsonEnabled()) return results
    this.log(
      renderTable(
        ['input', 'result', 'format'],
        results.map((result) => ('error' in result ? [result.input, `error: ${result.error}`, ''] : [result.input, result.output, result.format])),
      ),
    )
    if (failures > 0) this.logToStderr(`${failures} of ${results.length} values could not be parsed`)
    return undefined
  }
}

function toResult(input: string): ParseTsResult {
  const parsed = tryParseTimestamp(input)
  return isTimestampFailure(parsed) ? {input, error: parsed.error} : {input, output: parsed.iso, format: parsed.format}
}

function forEachStdinLine(onLine: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY})
    lines.on('line', onLine)
    lines.on('close', resolve)
    process.stdin.once('error', reject)
  })
}

/**
 * Plain mode: one result line per value on stdout, `error: <input>: <reason>` on stderr for each
 * failure. Stdin is streamed: output goes out in chunks as it is produced, and reading pauses
 * while stdout or stderr is not draining. Resolves to whether any value failed.
 */
async function writePlain(values: readonly string[]): Promise<boolean> {
  const {stdout, stderr} = process
  let out = ''
  let err = ''
  let failed = false
  let closed = false

  const add = (input: string) => {
    const parsed = tryParseTimestamp(input)
    if (isTimestampFailure(parsed)) {
      out += '\n'
      err += `error: ${input}: ${parsed.error}\n`
      failed = true
    } else {
      out += `${parsed.iso}\n`
    }
  }

  /** Writes what is buffered; returns the streams whose buffers are full. */
  const flush = (): NodeJS.WriteStream[] => {
    const full: NodeJS.WriteStream[] = []
    if (err && !stderr.write(err)) full.push(stderr)
    err = ''
    if (out && !closed && !stdout.write(out)) full.push(stdout)
    out = ''
    return full
  }

  if (values.length > 0) {
    for (const value of values) add(value)
    flush()
    return failed
  }

  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({input: process.stdin, crlfDelay: Number.POSITIVE_INFINITY})
    // The reader of our output went away (e.g. `| head`): stop reading and finish quietly. Stdin is
    // destroyed, not just paused, so the writer on the other side stops too.
    stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') return reject(error)
      closed = true
      lines.close()
      process.stdin.destroy()
    })
    process.stdin.once('error', reject)
    lines.on('line', (line) => {
      add(line)
      if (out.length + err.length < WRITE_CHUNK) return
      const full = flush()
      if (full.length === 0 || closed) return
      lines.pause()
      let waiting = full.length
      for (const stream of full) stream.once('drain', () => --waiting === 0 && lines.resume())
    })
    lines.on('close', () => {
      flush()
      resolve()
    })
  })
  return failed
}
