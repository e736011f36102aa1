import {expect} from 'chai'
import {spawn, spawnSync} from 'node:child_process'
import {createServer, type Server, connect} from 'node:net'
import {fileURLToPath} from 'node:url'
import {durationText} from '../../src/cli/flags.js'
import {exitCodeFor, EXIT_FAILURE, EXIT_UNAVAILABLE, EXIT_USAGE} from '../../src/cli/exit-codes.js'
import {BackendError} from '../../src/backends/backend.js'
import {IdentifierError} from '../../src/backends/identifiers.js'
import {CountQueryError} from '../../src/query/count-query.js'
import {LagTimeoutError, UnknownGroupError, UnknownTopicError} from '../../src/kafka/group-lag.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

interface Run {
  status: number | null
  stdout: string
  stderr: string
}

/** Runs the built CLI (`node bin/run.js ...args`) with stdin empty and stdout/stderr piped. */
function ipc(args: string[]): Run {
  const result = spawnSync(process.execPath, ['bin/run.js', ...args], {cwd: ROOT, input: '', encoding: 'utf8', timeout: 60_000})
  if (result.error) throw result.error
  return {status: result.status, stdout: result.stdout, stderr: result.stderr}
}

describe('how commands fail', () => {
  describe('a flag that does not parse exits 2, also with --json, and leaves stdout empty', () => {
    for (const command of ['count', 'consume', 'produce', 'serve', 'lag']) {
      it(`ipc ${command} --json --bad-flag`, () => {
        for (const args of [
          [command, '--bad-flag'],
          [command, '--json', '--bad-flag'],
        ]) {
          const run = ipc(args)
          expect(run.status, run.stderr).to.equal(2)
          expect(run.stdout).to.equal('')
          expect(run.stderr).to.include('Nonexistent flag')
        }
      })
    }

    it('a value a flag rejects (a duration, an option) exits 2 with --json', () => {
      for (const args of [
        ['count', '--json', '--timeout', 'soon'],
        ['count', '--json', '--by', 'week'],
        ['produce', '--json', '--topic', 't', '--num-devices', '0'],
      ]) {
        const run = ipc(args)
        expect(run.status, `${args.join(' ')}: ${run.stderr}`).to.equal(2)
        expect(run.stdout).to.equal('')
        expect(run.stderr).to.not.equal('')
      }
    })
  })

  describe('invalid settings: one line `ipc <command>: <reason>` on stderr, exit 2', () => {
    const cases: Array<[string[], string]> = [
      [['serve', '--backend-timeout', '0'], 'ipc serve: --backend-timeout must be greater than 0\n'],
      [['serve', '--dashboard-refresh', '100ms'], 'ipc serve: --dashboard-refresh must be at least 500ms\n'],
      [['serve', '--dashboard-error-codes', 'x'], 'ipc serve: invalid --dashboard-error-codes "x": use an integer from -128 to 127\n'],
      [['serve', '--backend', 'clickhouse', '--clickhouse-database', 'x; DROP'], 'ipc serve: '],
      [['count', '--backend', 'memory', '--until', 'later', '--json'], 'ipc count: invalid --until "later"'],
      [['count', '--backend', 'clickhouse', '--clickhouse-database', 'x; DROP', '--json'], 'ipc count: invalid ClickHouse database name'],
    ]
    for (const [args, line] of cases) {
      it(`ipc ${args.join(' ')}`, () => {
        const run = ipc(args)
        expect(run.status, run.stderr).to.equal(EXIT_USAGE)
        expect(run.stdout).to.equal('')
        expect(run.stderr.startsWith(line), run.stderr).to.equal(true)
        expect(run.stderr.trimEnd().split('\n'), run.stderr).to.have.lengthOf(1)
      })
    }
  })

  describe('ipc serve', () => {
    let blocker: Server
    before(async () => {
      blocker = createServer()
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    })
    after(() => blocker.close())

    it('exits 1 naming the port when it is in use', () => {
      const {port} = blocker.address() as {port: number}
      const run = ipc(['serve', '--backend', 'memory', '--port', String(port)])
      expect(run.status, run.stderr).to.equal(EXIT_FAILURE)
      expect(run.stderr).to.equal(`ipc serve: cannot listen on 127.0.0.1:${port}: port ${port} on 127.0.0.1 is already in use\n`)
    })

    it('on a second signal while requests are in flight, exits 130 at once', async () => {
      const child = spawn(process.execPath, ['bin/run.js', 'serve', '--backend', 'memory', '--port', '0', '--backend-timeout', '10s', '--no-dashboard'], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stderr = ''
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
      const waitFor = async (pattern: RegExp): Promise<RegExpExecArray> => {
        for (let i = 0; i < 300; i++) {
          const match = pattern.exec(stderr)
          if (match) return match
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
        throw new Error(`no ${pattern} in: ${stderr}`)
      }
      try {
        const port = Number((await waitFor(/listening on http:\/\/127\.0\.0\.1:(\d+)/))[1])
        // A request whose headers never end keeps the server from closing (up to 21 s here).
        const socket = connect(port, '127.0.0.1')
        socket.on('error', () => {})
        await new Promise((resolve) => socket.once('connect', resolve))
        socket.write('GET /unique_ip_count HTTP/1.1\r\nHost: test\r\n')
        await new Promise((resolve) => setTimeout(resolve, 200))
        child.kill('SIGTERM')
        await waitFor(/stopping: finishing requests in flight \(signal again to force\)/)
        expect(child.exitCode).to.equal(null)
        child.kill('SIGINT')
        expect(await exited).to.equal(130)
        expect(stderr).to.include('ipc serve: SIGTERM received').and.include('ipc serve: second signal, exiting without waiting\n')
        socket.destroy()
      } finally {
        child.kill('SIGKILL')
      }
    })
  })
})

describe('exitCodeFor', () => {
  it('maps a service failure to 3, an unusable name or query to 2, anything else to 1, also when wrapped', () => {
    expect(exitCodeFor(new BackendError('down', 'redis', 'redis://x'))).to.equal(EXIT_UNAVAILABLE)
    expect(exitCodeFor(new IdentifierError('bad name'))).to.equal(EXIT_USAGE)
    expect(exitCodeFor(new CountQueryError('no ranges'))).to.equal(EXIT_USAGE)
    expect(exitCodeFor(new Error('outer', {cause: new CountQueryError('inner')}))).to.equal(EXIT_USAGE)
    expect(exitCodeFor(new Error('bug'))).to.equal(EXIT_FAILURE)
    expect(exitCodeFor('text')).to.equal(EXIT_FAILURE)
  })

  it("maps ipc lag's unknown group to 2, its unknown topic and timeout to 3", () => {
    expect(exitCodeFor(new UnknownGroupError('g'))).to.equal(EXIT_USAGE)
    expect(exitCodeFor(new UnknownTopicError('t'))).to.equal(EXIT_UNAVAILABLE)
    expect(exitCodeFor(new LagTimeoutError('no answer'))).to.equal(EXIT_UNAVAILABLE)
  })
})

describe('durationText', () => {
  it('writes a default in the largest unit that divides it', () => {
    expect([500, 1000, 2000, 30_000, 90_000, 3_600_000, 30 * 86_400_000, 1500].map(durationText)).to.deep.equal([
      '500ms',
      '1s',
      '2s',
      '30s',
      '90s',
      '1h',
      '30d',
      '1500ms',
    ])
  })
})
