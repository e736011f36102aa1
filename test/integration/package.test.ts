import {expect} from 'chai'
import {execFile} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import http from 'node:http'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'
import {type CliOptions, REPO_ROOT, runIpc} from '../support/cli.js'
import {createTopic} from '../support/kafka.js'
import {startServe} from '../support/serve.js'
import {uniqueName} from '../support/services.js'
import {type ConsumeJson, parseJson, type ProduceJson} from '../support/runs.js'

const run = promisify(execFile)

interface PackResult {
  filename: string
  files: {path: string}[]
}

function get(url: string): Promise<{status: number; contentType: string; body: string}> {
  return new Promise((resolve, reject) => {
    http
      .get(url, {agent: false}, (res) => {
        let body = ''
        res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk))
        res.on('end', () => resolve({status: res.statusCode ?? 0, contentType: res.headers['content-type'] ?? '', body}))
        res.on('error', reject)
      })
      .on('error', reject)
  })
}

/**
 * The package as a user gets it: `npm pack` of the built checkout, `npm install -g` of the tarball
 * into a temporary prefix, and the installed `ipc` run from `/`, where nothing of the checkout is
 * in reach. The tarball is packed with --ignore-scripts because the test command has just built
 * (its prepack script would build again). Dependencies come from npm's cache, which `npm ci`
 * filled, and from the registry for anything the cache lacks.
 */
describe('the npm package, installed globally from its tarball', function () {
  this.timeout(180_000)
  let dir: string
  let packed: PackResult
  const installed: CliOptions = {cwd: '/'}

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ipc-package-'))
    const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024})
    ;[packed] = JSON.parse(pack.stdout) as PackResult[]
    const prefix = join(dir, 'prefix')
    await run('npm', ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(dir, packed.filename)], {cwd: '/'})
    installed.executable = join(prefix, 'bin', 'ipc')
  })

  after(() => {
    if (dir) rmSync(dir, {recursive: true, force: true})
  })

  it('holds the compiled commands, the oclif manifest and the dashboard assets, and no tests, sources or benchmarks', () => {
    const paths = packed.files.map((file) => file.path)
    expect(paths).to.include.members([
      'package.json',
      'oclif.manifest.json',
      'bin/run.js',
      'dist/src/commands/consume.js',
      'dist/src/commands/parse-ts.js',
      'assets/dashboard/index.html',
      'assets/dashboard/dashboard.js',
      'assets/dashboard/dashboard.css',
    ])
    expect(paths.filter((path) => /^(src|test|bench|scripts|docs|dist\/test|dist\/bench)\//.test(path) || path.endsWith('.map'))).to.deep.equal([])
  })

  it('ipc --help lists the five commands', async () => {
    const help = await runIpc(['--help'], installed)
    expect(help.code, help.stderr).to.equal(0)
    for (const command of ['consume', 'produce', 'count', 'parse-ts', 'serve']) expect(help.stdout).to.match(new RegExp(`^  ${command} `, 'm'))
  })

  it('ipc parse-ts parses timestamps', async () => {
    const parsed = await runIpc(['parse-ts', '2021-12-03T16:15:30.235Z', '1638548130235', '2021-12-03T17:15:30.235+01:00'], installed)
    expect(parsed.code, parsed.stderr).to.equal(0)
    expect(parsed.stdout).to.equal('2021-12-03T16:15:30.235Z\n'.repeat(3))
  })

  it('ipc produce and ipc consume count events sent with each native compression codec', async () => {
    const topic = uniqueName('package')
    await createTopic(topic, 2)
    const distinct = new Set<number>()
    for (const codec of ['snappy', 'lz4', 'zstd']) {
      const produced = parseJson<ProduceJson>(
        await runIpc(
          [
            'produce',
            '--topic',
            topic,
            '--num-devices',
            '50',
            '--num-messages',
            '200',
            '--seed',
            '7',
            '--pause-ms',
            '0',
            '--batch',
            '200',
            '--compression',
            codec,
            '--json',
          ],
          installed,
        ),
      )
      expect(produced.messagesSent).to.equal(200)
      distinct.add(produced.distinctDevices)
    }
    expect(distinct.size, 'the same seed gives the same devices').to.equal(1)
    const consumed = parseJson<ConsumeJson>(
      await runIpc(
        ['consume', '--topic', topic, '--group', uniqueName('g'), '--backend', 'memory', '--until-idle', '2s', '--from-beginning', '--json'],
        installed,
      ),
    )
    expect(consumed.reason).to.equal('idle')
    expect(consumed.stats.processed).to.equal(600)
    expect(consumed.stats.invalid).to.equal(0)
    expect(consumed.totalDevices).to.equal([...distinct][0])
  })

  it('ipc serve serves the dashboard page and its script from the installed assets', async () => {
    const serve = await startServe(['--backend', 'memory'], installed)
    try {
      const page = await get(`${serve.url}/`)
      expect(page.status).to.equal(200)
      expect(page.contentType).to.match(/^text\/html/)
      expect(page.body).to.include('src="/dashboard.js"')
      const script = await get(`${serve.url}/dashboard.js`)
      expect(script.status).to.equal(200)
      expect(script.body.length).to.be.above(1000)
    } finally {
      await serve.stop()
    }
  })
})
