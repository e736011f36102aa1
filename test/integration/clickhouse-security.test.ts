import {expect} from 'chai'
import {readFileSync} from 'node:fs'
import {type CliResult, runIpc} from '../support/cli.js'
import {createTopic} from '../support/kafka.js'
import {startServe} from '../support/serve.js'
import {devServiceSetting, uniqueName} from '../support/services.js'
import {clickhouseConsumeArgs, type ConsumeJson, describeRun, parseJson, produce} from '../support/runs.js'

/**
 * The ClickHouse backend over HTTPS (the test ClickHouse's https_port, a throw-away CA) and as a
 * user with a password (ipc_writer, its password made at start-up).
 */

describe('ClickHouse over HTTPS', function () {
  this.timeout(120_000)
  let httpsUrl = ''
  let ca = ''
  let user = ''
  let password = ''
  const wrongPassword = 'Wr0ng-ClickHouse-Pa55word'
  const printed: string[] = []
  const remember = (result: CliResult): CliResult => {
    printed.push(result.stdout, result.stderr)
    return result
  }
  before(() => {
    httpsUrl = devServiceSetting('DEV_CLICKHOUSE_HTTPS_URL')
    ca = devServiceSetting('DEV_CLICKHOUSE_CA')
    user = devServiceSetting('DEV_CLICKHOUSE_USER')
    password = readFileSync(devServiceSetting('DEV_CLICKHOUSE_PASSWORD_FILE'), 'utf8').trim()
  })

  it('consume and count with --clickhouse-ca give the exact count', async () => {
    const topic = uniqueName('ch_tls')
    await createTopic(topic, 2)
    const produced = await produce(topic, {'--num-devices': '700', '--num-messages': '2000', '--seed': '91'})
    const database = uniqueName('ipc_tls')
    const secure = ['--clickhouse-url', httpsUrl, '--clickhouse-ca', ca]
    const consumed = parseJson<ConsumeJson>(await runIpc([...clickhouseConsumeArgs(topic, database, uniqueName('g'), {'--until-idle': '2s'}), ...secure]))
    expect(consumed.stats.processed).to.equal(2000)
    const counted = await runIpc(['count', '--backend', 'clickhouse', '--clickhouse-database', database, ...secure])
    expect(counted.code, describeRun(counted)).to.equal(0)
    expect(counted.stdout).to.equal(`${produced.distinctDevices}\n`)
  })

  it('a certificate from an unknown CA, or HTTPS against the HTTP port: exit 3, one line naming the URL', async () => {
    const httpPort = new URL(devServiceSetting('CLICKHOUSE_URL')).port
    const results = await Promise.all([
      runIpc(['count', '--backend', 'clickhouse', '--clickhouse-url', httpsUrl]),
      runIpc(['count', '--backend', 'clickhouse', '--clickhouse-url', `https://127.0.0.1:${httpPort}`, '--clickhouse-ca', ca]),
    ])
    for (const result of results) {
      expect(result.code, describeRun(result)).to.equal(3)
      const lines = result.stderr.split('\n').filter(Boolean)
      expect(lines, result.stderr).to.have.lengthOf(1)
      expect(lines[0]).to.match(/https:\/\/127\.0\.0\.1:\d+/)
      expect(result.stderr).to.not.match(/^\s+at /m)
    }
    expect(results[0].stderr).to.match(/certificate/)
  })

  it('consume, count and serve over HTTPS as a user with a password: the exact count, and the password nowhere in what they print or serve', async () => {
    const topic = uniqueName('ch_password')
    await createTopic(topic, 2)
    const produced = await produce(topic, {'--num-devices': '500', '--num-messages': '1500', '--seed': '92'})
    const database = uniqueName('ipc_password')
    const secure = ['--clickhouse-url', httpsUrl, '--clickhouse-ca', ca, '--clickhouse-user', user]
    const env = {CLICKHOUSE_PASSWORD: password}
    const consumed = parseJson<ConsumeJson>(
      remember(await runIpc([...clickhouseConsumeArgs(topic, database, uniqueName('g'), {'--until-idle': '2s'}), ...secure], {env})),
    )
    secure.push('--clickhouse-database', database)
    expect(consumed.stats.valid).to.equal(1500)
    const counted = remember(await runIpc(['count', '--backend', 'clickhouse', ...secure, '--json'], {env}))
    expect(counted.code, describeRun(counted)).to.equal(0)
    expect(JSON.parse(counted.stdout)).to.include({unique_device_ip_count: produced.distinctDevices})

    // The password on the command line, the worst place for it: still in no answer and no log line.
    const serve = await startServe(['--backend', 'clickhouse', ...secure, '--clickhouse-password', password])
    try {
      const answers = await Promise.all(['/unique_ip_count', '/healthz', '/metrics', '/'].map(async (path) => (await fetch(`${serve.url}${path}`)).text()))
      expect(JSON.parse(answers[0])).to.deep.equal({unique_device_ip_count: produced.distinctDevices})
      printed.push(...answers)
    } finally {
      remember(await serve.stop())
    }
    const wrong = await startServe(['--backend', 'clickhouse', ...secure, '--clickhouse-password', wrongPassword])
    try {
      const answer = await fetch(`${wrong.url}/unique_ip_count`)
      expect(answer.status).to.equal(503)
      const body = await answer.text()
      expect(body).to.match(/ipc_writer/)
      printed.push(body, await (await fetch(`${wrong.url}/metrics`)).text())
    } finally {
      remember(await wrong.stop())
    }
  })

  it('a wrong password or an unknown user: exit 3, one line naming the URL and the refusal', async () => {
    const results = await Promise.all([
      runIpc(['count', '--backend', 'clickhouse', '--clickhouse-url', httpsUrl, '--clickhouse-ca', ca, '--clickhouse-user', user], {
        env: {CLICKHOUSE_PASSWORD: wrongPassword},
      }),
      runIpc(['count', '--backend', 'clickhouse', '--clickhouse-url', httpsUrl, '--clickhouse-ca', ca, '--clickhouse-user', 'nobody'], {
        env: {CLICKHOUSE_PASSWORD: password},
      }),
    ])
    for (const [index, result] of results.entries()) {
      remember(result)
      expect(result.code, describeRun(result)).to.equal(3)
      const lines = result.stderr.split('\n').filter(Boolean)
      expect(lines, result.stderr).to.have.lengthOf(1)
      expect(lines[0]).to.match(/https:\/\/127\.0\.0\.1:\d+/)
      expect(lines[0]).to.match(index === 0 ? /Wrong password for user ipc_writer/ : /Unknown user nobody/)
      expect(result.stderr).to.not.match(/^\s+at /m)
    }
  })

  it('--help shows no password given in the environment', async () => {
    for (const command of ['consume', 'count', 'serve']) {
      const help = remember(await runIpc([command, '--help'], {env: {CLICKHOUSE_PASSWORD: password}}))
      expect(help.code).to.equal(0)
      expect(help.stdout).to.contain('--clickhouse-password')
    }
  })

  it('no run printed or served a password', () => {
    expect(printed.length).to.be.greaterThan(10)
    for (const output of printed) {
      expect(output).to.not.include(password)
      expect(output).to.not.include(wrongPassword)
    }
  })
})
