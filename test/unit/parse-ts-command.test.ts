import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import {fileURLToPath} from 'node:url'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

interface Run {
  status: number | null
  stdout: string
  stderr: string
}

/** Runs the built CLI (`node bin/run.js parse-ts ...`) with stdout/stderr piped. */
function parseTs(args: string[], options: {input?: string; env?: NodeJS.ProcessEnv} = {}): Run {
  const result = spawnSync(process.execPath, ['bin/run.js', 'parse-ts', ...args], {
    cwd: ROOT,
    input: options.input ?? '',
    env: {...process.env, ...options.env},
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 64 * 1024 * 1024,
  })
  if (result.error) throw result.error
  return {status: result.status, stdout: result.stdout, stderr: result.stderr}
}

describe('ipc parse-ts', () => {
  it('parses a quoted epoch-millisecond argument', () => {
    const run = parseTs(["'1726668850124'"])
    expect(run.stdout).to.equal('2024-09-18T14:14:10.124Z\n')
    expect(run.stderr).to.equal('')
    expect(run.status).to.equal(0)
  })

  it('gives the same results under TZ=America/Bogota (no zone means UTC)', () => {
    const run = parseTs(["'1726668850124'", '2021-12-03T16:15:30.235'], {env: {TZ: 'America/Bogota'}})
    expect(run.stdout).to.equal('2024-09-18T14:14:10.124Z\n2021-12-03T16:15:30.235Z\n')
    expect(run.status).to.equal(0)
  })

  it('parses a negative epoch argument', () => {
    const run = parseTs(['-86400'])
    expect(run.stdout).to.equal('1969-12-31T00:00:00.000Z\n')
    expect(run.status).to.equal(0)
  })

  it('rejects an impossible date with the reason on stderr and exit code 1', () => {
    const run = parseTs(['2021-02-30T00:00:00'])
    expect(run.status).to.equal(1)
    expect(run.stdout).to.equal('\n')
    expect(run.stderr).to.equal('error: 2021-02-30T00:00:00: day 30 does not exist in 2021-02 (expected 01-28)\n')
  })

  it('reads stdin line by line: one output line per input line, failures as empty lines', () => {
    const input = ['1726668850124', 'not-a-date', "'2021-12-03T16:15:30.235'", '1726667942\r', '', '2021-12-03 16:15:30+02:00'].join('\n') + '\n'
    const run = parseTs([], {input})
    expect(run.stdout.split('\n')).to.deep.equal([
      '2024-09-18T14:14:10.124Z',
      '',
      '2021-12-03T16:15:30.235Z',
      '2024-09-18T13:59:02.000Z',
      '',
      '2021-12-03T14:15:30.000Z',
      '',
    ])
    const errors = run.stderr.trimEnd().split('\n')
    expect(errors).to.have.length(2)
    expect(errors[0]).to.match(/^error: not-a-date: not an ISO 8601 date-time/)
    expect(errors[1]).to.equal('error: : empty input')
    expect(run.status).to.equal(1)
  })

  it('exits 0 on stdin when every line parses, and keeps order across many output chunks', () => {
    const count = 100_000
    const first = 1_726_668_850_000
    const input = Array.from({length: count}, (_, i) => String(first + i)).join('\n')
    const run = parseTs([], {input})
    const lines = run.stdout.split('\n')
    expect(lines).to.have.length(count + 1)
    expect(lines[0]).to.equal('2024-09-18T14:14:10.000Z')
    expect(lines[count - 1]).to.equal(new Date(first + count - 1).toISOString())
    expect(lines[count]).to.equal('')
    expect(run.stderr).to.equal('')
    expect(run.status).to.equal(0)
  })

  it('--json prints an array of results and errors, and exits 1 when any value failed', () => {
    const run = parseTs(['2021-02-30T00:00:00', '1726668850124', '--json'])
    expect(JSON.parse(run.stdout)).to.deep.equal([
      {input: '2021-02-30T00:00:00', error: 'day 30 does not exist in 2021-02 (expected 01-28)'},
      {input: '1726668850124', output: '2024-09-18T14:14:10.124Z', format: 'epoch-millis'},
    ])
    expect(run.status).to.equal(1)
  })

  it('--json with stdin, all valid, exits 0', () => {
    const run = parseTs(['--json'], {input: "1726667942\n'2021-12-03T16:15:30.235'\n"})
    expect(JSON.parse(run.stdout)).to.deep.equal([
      {input: '1726667942', output: '2024-09-18T13:59:02.000Z', format: 'epoch-seconds'},
      {input: "'2021-12-03T16:15:30.235'", output: '2021-12-03T16:15:30.235Z', format: 'iso8601-no-zone'},
    ])
    expect(run.status).to.equal(0)
  })

  it('follows the arguments one for one when values repeat, plain and --json', () => {
    const plain = parseTs(['1', '2', '3', '1', 'x', '2', 'x'])
    expect(plain.stdout).to.equal(
      ['1970-01-01T00:00:01.000Z', '1970-01-01T00:00:02.000Z', '1970-01-01T00:00:03.000Z', '1970-01-01T00:00:01.000Z', '', '1970-01-01T00:00:02.000Z', ''].join(
        '\n',
      ) + '\n',
    )
    expect(plain.stderr.trimEnd().split('\n')).to.have.lengthOf(2)
    const json = parseTs(['2', '--json', '1', '2'])
    expect((JSON.parse(json.stdout) as Array<{input: string}>).map((result) => result.input)).to.deep.equal(['2', '1', '2'])
  })

  it('after --, keeps negative numbers and flag-like values in place, and --json there is a value', () => {
    const run = parseTs(['-5', '--', '-86400', '--json', '-5', '1'])
    expect(run.stdout.split('\n')).to.deep.equal([
      '1969-12-31T23:59:55.000Z',
      '1969-12-31T00:00:00.000Z',
      '',
      '1969-12-31T23:59:55.000Z',
      '1970-01-01T00:00:01.000Z',
      '',
    ])
    expect(run.stderr).to.match(/^error: --json: /)
    expect(run.status).to.equal(1)
  })

  it('--help explains the accepted shapes and the epoch magnitude rule', () => {
    const run = parseTs(['--help'])
    expect(run.status).to.equal(0)
    const help = run.stdout.replaceAll(/\s+/g, ' ')
    expect(help).to.include('v < 1e11 seconds; 1e11 <= v < 1e14 milliseconds; 1e14 <= v < 1e17 microseconds; v >= 1e17 nanoseconds')
    expect(help).to.include('No zone means UTC')
    expect(help).to.include('--json')
    expect(help).to.include('EXAMPLES')
  })
})
