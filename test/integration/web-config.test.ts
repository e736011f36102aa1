import {createClient as createRedisClient} from '@redis/client'
import bcrypt from 'bcryptjs'
import {expect} from 'chai'
import {randomBytes} from 'node:crypto'
import {once} from 'node:events'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import net from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import tls from 'node:tls'

import {launchChromium} from '../support/browser.js'
import {type RunningCli, runIpc, startIpc, waitFor} from '../support/cli.js'
import {curl} from '../support/curl.js'
import {createTopic} from '../support/kafka.js'
import {PrometheusServer} from '../support/prometheus.js'
import {type RunningServe, startServe} from '../support/serve.js'
import {serviceUrls, uniqueName} from '../support/services.js'
import {makeThrowawayCa, type ThrowawayCa} from '../support/tls-ca.js'

const USER = 'prometheus'
const PASSWORD = `pw-${randomBytes(12).toString('base64url')}`
/** Cost 4, the lowest bcrypt takes, keeps the test fast; production hashes use 10 or more. */
const HASH = bcrypt.hashSync(PASSWORD, 4)
const DEVICES = 37
const HEADERS_TIMEOUT_MS = 2000

const deviceIps = Array.from({length: DEVICES}, (_, i) => `10.99.0.${i + 1}`)
const basicHeader = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`

/**
 * `ipc serve` and `ipc consume --metrics-port` as they run on a network: HTTPS with a throw-away
 * CA (made by the openssl CLI), basic auth against a bcrypt hash, client certificates, asked by
 * the real curl, Debian's Prometheus and Chromium; the header time-out against a client that sends
 * a byte per second; bad web configs; and no secret in any output.
 */
describe('ipc serve and consume --metrics-port with --web-config: TLS, client certificates, basic auth, limits', function () {
  this.timeout(120_000)
  const dir = mkdtempSync(join(tmpdir(), 'ipc-web-config-'))
  const redisKey = uniqueName('ipc:webcfg')
  const topic = uniqueName('webcfg')
  let ca: ThrowawayCa
  let serve: RunningServe
  let consumer: RunningCli
  let metricsUrl: string
  let webConfig: string
  let prometheus: PrometheusServer | undefined
  const seen: string[] = []

  const writeConfig = (name: string, lines: readonly string[]): string => {
    const file = join(dir, name)
    writeFileSync(file, `${lines.join('\n')}\n`)
    return file
  }
  const redisFlags = (): string[] => ['--backend', 'redis', '--redis-url', serviceUrls().redisUrl, '--redis-key', redisKey]
  const trusted = (): string[] => ['--cacert', ca.caFile]
  const credentials = ['-u', `${USER}:${PASSWORD}`]

  before(async () => {
    ca = makeThrowawayCa(dir)
    // Relative paths: read from the config file's folder.
    const users = ['basic_auth_users:', `  ${USER}: ${HASH}`]
    webConfig = writeConfig('web.yml', ['tls_server_config:', '  cert_file: server.pem', '  key_file: server.key', ...users])
    const clientCertConfig = writeConfig('client-certs.yml', [
      'tls_server_config:',
      `  cert_file: ${ca.serverCert}`,
      `  key_file: ${ca.serverKey}`,
      '  client_auth_type: RequireAndVerifyClientCert',
      `  client_ca_file: ${ca.caFile}`,
      ...users,
    ])
    const redis = createRedisClient({url: serviceUrls().redisUrl})
    await redis.connect()
    await redis.pfAdd(redisKey, deviceIps)
    await redis.close()
    await createTopic(topic, 1)
    consumer = startIpc(
      ['consume', '--topic', topic, '--group', uniqueName('g_webcfg'), ...redisFlags(), '--metrics-port', '0', '--web-config', clientCertConfig],
      {timeoutMs: 120_000},
    )
    const started = startServe([...redisFlags(), '--web-config', webConfig, '--http-headers-timeout', `${HEADERS_TIMEOUT_MS}ms`])
    metricsUrl = await waitFor('the metrics address on stderr', () => /metrics on (https:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(consumer.stderr())?.[1], 30_000)
    serve = await started
  })

  after(async () => {
    await prometheus?.stop()
    await serve?.stop()
    consumer?.child.kill('SIGTERM')
    await consumer?.done
    const redis = createRedisClient({url: serviceUrls().redisUrl})
    await redis.connect()
    await redis.del(redisKey)
    await redis.close()
    rmSync(dir, {recursive: true, force: true})
  })

  it('answers curl over HTTPS: no credentials 401, a wrong password the same 401 as an unknown user, the right ones 200 with the count', async () => {
    expect(serve.url).to.match(/^https:\/\/127\.0\.0\.1:\d+$/)
    const url = `${serve.url}/unique_ip_count`
    const [none, wrongPassword, unknownUser, right, plain] = await Promise.all([
      curl(url, ...trusted()),
      curl(url, ...trusted(), '-u', `${USER}:${PASSWORD}x`),
      curl(url, ...trusted(), '-u', `nobody:${PASSWORD}`),
      curl(url, ...trusted(), ...credentials),
      curl(url.replace('https:', 'http:')),
    ])
    for (const refused of [none, wrongPassword, unknownUser]) {
      expect(refused.status, refused.stderr).to.equal(401)
      expect(refused.headers).to.match(/\r\nWWW-Authenticate: Basic realm="ipc", charset="UTF-8"\r\n/)
      expect(refused.body).to.equal('{"error":"unauthorized"}\n')
    }
    expect(wrongPassword.headers.replace(/\r\nDate: .*/, '')).to.equal(unknownUser.headers.replace(/\r\nDate: .*/, ''))
    expect(right.status, right.stderr).to.equal(200)
    expect(JSON.parse(right.body)).to.deep.equal({unique_device_ip_count: DEVICES})
    expect(plain.status, 'plain HTTP to the HTTPS port').to.equal(0)
    seen.push(right.body)
  })

  it('asks for credentials on every route: the dashboard, its assets, /healthz, /metrics and unknown paths', async () => {
    const paths = ['/', '/dashboard.js', '/dashboard.css', '/healthz', '/metrics', '/no-such-path']
    const [anonymous, authorized] = await Promise.all([
      Promise.all(paths.map((path) => curl(`${serve.url}${path}`, ...trusted()))),
      Promise.all(paths.map((path) => curl(`${serve.url}${path}`, ...trusted(), ...credentials))),
    ])
    expect(anonymous.map((answer) => answer.status)).to.deep.equal([401, 401, 401, 401, 401, 401])
    expect(authorized.map((answer) => answer.status)).to.deep.equal([200, 200, 200, 200, 200, 404])
    const metrics = authorized[4].body
    expect(metrics).to.match(/^ipc_http_requests_total\{route="\/unique_ip_count",status="401"\} [1-9]/m)
    seen.push(metrics)
  })

  it(`cuts off a client that sends its headers a byte per second at --http-headers-timeout (${HEADERS_TIMEOUT_MS} ms) with 408`, async () => {
    const request = `GET /unique_ip_count HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${basicHeader}\r\n\r\n`
    const socket = tls.connect({host: '127.0.0.1', port: Number(new URL(serve.url).port), ca: readFileSync(ca.caFile)})
    socket.on('error', () => {})
    await once(socket, 'secureConnect')
    let received = ''
    let sent = 0
    socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk))
    const started = Date.now()
    const sendByte = (): void => {
      if (sent < request.length && !socket.destroyed) socket.write(request[sent++])
    }
    sendByte()
    const ticker = setInterval(sendByte, 1000)
    const guard = setTimeout(() => socket.destroy(), 15_000)
    await once(socket, 'close')
    clearInterval(ticker)
    clearTimeout(guard)
    const elapsed = Date.now() - started
    expect(received).to.match(/^HTTP\/1\.1 408 /)
    expect(sent).to.be.below(10)
    // Node looks for expired connections every second at most.
    expect(elapsed).to.be.within(HEADERS_TIMEOUT_MS, HEADERS_TIMEOUT_MS + 1500)
  })

  it("consume --metrics-port with RequireAndVerifyClientCert: no certificate or a stranger's is refused, the CA's still needs the password", async () => {
    const stranger = ['--cert', ca.strangerCert, '--key', ca.strangerKey]
    const client = ['--cert', ca.clientCert, '--key', ca.clientKey]
    const [noCertificate, strangers, noPassword, readyz, metrics] = await Promise.all([
      curl(`${metricsUrl}/metrics`, ...trusted(), ...credentials),
      curl(`${metricsUrl}/metrics`, ...trusted(), ...stranger, ...credentials),
      curl(`${metricsUrl}/metrics`, ...trusted(), ...client),
      curl(`${metricsUrl}/readyz`, ...trusted(), ...client),
      curl(`${metricsUrl}/metrics`, ...trusted(), ...client, ...credentials),
    ])
    for (const refused of [noCertificate, strangers]) {
      expect(refused.status, refused.stderr).to.equal(0)
      expect(refused.exitCode).to.not.equal(0)
    }
    expect([noPassword.status, readyz.status]).to.deep.equal([401, 401])
    expect(metrics.status, metrics.stderr).to.equal(200)
    expect(metrics.body).to.match(/^ipc_consumer_info\{/m)
    seen.push(metrics.body)
  })

  it('shows the dashboard in Chromium over HTTPS with basic auth, and nothing without', async () => {
    const browser = await launchChromium()
    try {
      const anonymous = await (await browser.newContext({ignoreHTTPSErrors: true})).newPage()
      // Chromium answers a 401 challenge it has no credentials for by failing the navigation.
      const refused = await anonymous.goto(`${serve.url}/`).then(
        (response) => `status ${response?.status()}`,
        (error: Error) => error.message,
      )
      expect(refused).to.match(/net::ERR_INVALID_AUTH_CREDENTIALS/)
      const context = await browser.newContext({ignoreHTTPSErrors: true, httpCredentials: {username: USER, password: PASSWORD}})
      const page = await context.newPage()
      const problems: string[] = []
      page.on('pageerror', (error) => problems.push(error.message))
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(message.text())
      })
      expect((await page.goto(`${serve.url}/`))?.status()).to.equal(200)
      await page.waitForSelector('html[data-loaded]')
      expect(Number(await page.locator('#total').getAttribute('data-count'))).to.equal(DEVICES)
      expect(await page.locator('body').getAttribute('data-state')).to.not.equal('down')
      expect(problems, 'errors in the page').to.deep.equal([])
    } finally {
      await browser.close()
    }
  })

  it("is scraped by Debian's Prometheus with scheme https, tls_config and basic_auth (up 1); a wrong password leaves up 0 with the 401", async () => {
    const password = {username: USER, password: PASSWORD}
    const serveTarget = [new URL(serve.url).host]
    prometheus = await new PrometheusServer([
      {
        job: 'ipc-consume',
        targets: [new URL(metricsUrl).host],
        scheme: 'https',
        tls: {caFile: ca.caFile, certFile: ca.clientCert, keyFile: ca.clientKey},
        basicAuth: password,
      },
      {job: 'ipc-serve', targets: serveTarget, scheme: 'https', tls: {caFile: ca.caFile}, basicAuth: password},
      {job: 'ipc-serve-wrong-password', targets: serveTarget, scheme: 'https', tls: {caFile: ca.caFile}, basicAuth: {...password, password: 'wrong'}},
    ]).start()
    const server = prometheus
    const up = await waitFor(
      'every target scraped once',
      async () => {
        const samples = await server.query('up')
        return samples.length === 3 ? new Map(samples.map((sample) => [sample.metric.job, sample.value])) : undefined
      },
      30_000,
      250,
    )
    expect(Object.fromEntries(up)).to.deep.equal({'ipc-consume': 1, 'ipc-serve': 1, 'ipc-serve-wrong-password': 0})
    const wrong = (await server.targets()).find((target) => target.labels.job === 'ipc-serve-wrong-password')
    expect(wrong?.lastError).to.match(/401 Unauthorized/)
  })

  it('ends on a bad web config with one line and exit 2, quoting no password or hash', async () => {
    const tlsWith = (key: string, value: string) => ['tls_server_config:', `  cert_file: ${ca.serverCert}`, `  key_file: ${ca.serverKey}`, `  ${key}: ${value}`]
    writeFileSync(join(dir, 'garbage.key'), `${PASSWORD}\n`)
    const cases: Array<[string, string, RegExp]> = [
      ['a missing file', join(dir, 'missing.yml'), /^cannot read the web config \S+missing\.yml: ENOENT$/],
      [
        'bad YAML',
        writeConfig('bad-yaml.yml', ['basic_auth_users:', `  ${USER}: ${HASH}`, `  ${USER}: ${HASH}`]),
        /^web config \S+: not valid YAML: Map keys must be unique at line 3, column 3$/,
      ],
      [
        'an unreadable key',
        writeConfig('bad-key.yml', ['tls_server_config:', `  cert_file: ${ca.serverCert}`, '  key_file: garbage.key']),
        /^web config \S+: cannot use cert_file \S+server\.pem with key_file \S+garbage\.key: .+$/,
      ],
      [
        'a hash that is not bcrypt',
        writeConfig('plain-password.yml', ['basic_auth_users:', `  ${USER}: ${PASSWORD}`]),
        /^web config \S+: basic_auth_users\.prometheus is not a bcrypt hash \(make one with htpasswd -nBC 10 ""\)$/,
      ],
      [
        'an unknown client_auth_type',
        writeConfig('client-auth.yml', tlsWith('client_auth_type', 'RequireClientCert')),
        /^web config \S+: tls_server_config\.client_auth_type "RequireClientCert" is not one of NoClientCert, /,
      ],
      ['an unknown key', writeConfig('unknown-key.yml', ['tls_config:', `  cert_file: ${ca.serverCert}`]), /^web config \S+: unknown key tls_config$/],
    ]
    const [consumeRun, ...serveRuns] = await Promise.all([
      runIpc(['consume', '--topic', topic, '--metrics-port', '0', '--web-config', join(dir, 'plain-password.yml')]),
      ...cases.map(([, file]) => runIpc(['serve', '--port', '0', ...redisFlags(), '--web-config', file])),
    ])
    for (const [index, [what, , line]] of cases.entries()) {
      const run = serveRuns[index]
      expect(run.code, `${what}: ${run.stderr}`).to.equal(2)
      expect(run.stdout, what).to.equal('')
      const lines = run.stderr.trimEnd().split('\n')
      expect(lines, what).to.have.length(1)
      expect(lines[0].replace(/^ipc serve: /, ''), what).to.match(line)
      seen.push(run.stderr)
    }
    expect(consumeRun.code, consumeRun.stderr).to.equal(2)
    expect(consumeRun.stderr).to.match(/^ipc consume: web config \S+: basic_auth_users\.prometheus is not a bcrypt hash .*\n$/)
    seen.push(consumeRun.stderr)
  })

  it('warns once when bound to every interface without a web config, and answers 503 past --http-max-requests', async () => {
    const open = startIpc(['serve', '--port', '0', '--host', '0.0.0.0', ...redisFlags(), '--http-max-requests', '1'])
    try {
      const port = await waitFor('the address on stderr', () => /listening on http:\/\/0\.0\.0\.0:(\d+)/.exec(open.stderr())?.[1], 30_000)
      await waitFor('the warning', () => (open.stderr().includes('without --web-config') ? true : undefined), 5000)
      const warnings = open
        .stderr()
        .split('\n')
        .filter((line) => line.includes('without --web-config'))
      expect(warnings).to.deep.equal([
        'ipc serve: listening on 0.0.0.0 without --web-config: no TLS and no authentication, anyone who can reach this address can read it',
      ])
      // A request whose body never comes holds the one slot.
      const holder = net.connect(Number(port), '127.0.0.1')
      holder.on('error', () => {})
      holder.write('GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\na')
      const url = `http://127.0.0.1:${port}/unique_ip_count`
      const refused = await waitFor('a 503', async () => ((await curl(url)).status === 503 ? await curl(url) : undefined), 5000)
      expect(refused.status).to.equal(503)
      expect(refused.headers).to.match(/\r\nRetry-After: 1\r\n/)
      holder.destroy()
      await waitFor('the slot back', async () => ((await curl(url)).status === 200 ? true : undefined), 5000)
    } finally {
      open.child.kill('SIGTERM')
      await open.done
    }
    expect(serve.stderr()).to.not.match(/without (--web-config|TLS)/)
    expect(consumer.stderr()).to.not.match(/without (--web-config|TLS)/)
  })

  it('shows no password, hash or key in its output, /metrics or --help', async () => {
    const [serveHelp, consumeHelp] = await Promise.all([
      runIpc(['serve', '--help'], {env: {IPC_WEB_CONFIG: webConfig}}),
      runIpc(['consume', '--help'], {env: {IPC_WEB_CONFIG: webConfig}}),
    ])
    expect(serveHelp.stdout).to.include('--web-config')
    expect(consumeHelp.stdout).to.include('--web-config')
    const keyLines = [ca.serverKey, ca.clientKey]
      .flatMap((file) => readFileSync(file, 'utf8').split('\n'))
      .filter((line) => line.length > 20 && !line.startsWith('-----'))
    const texts = [...seen, serve.stdout(), serve.stderr(), consumer.stdout(), consumer.stderr(), serveHelp.stdout, serveHelp.stderr, consumeHelp.stdout]
    expect(seen.length).to.be.above(8)
    for (const secret of [PASSWORD, HASH, HASH.slice(7), ...keyLines]) {
      for (const text of texts) expect(text.includes(secret), `a secret in: ${text.slice(0, 200)}`).to.equal(false)
    }
  })
})
