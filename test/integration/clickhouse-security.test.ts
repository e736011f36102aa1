import {expect} from 'chai'
import {runIpc} from '../support/cli.js'
import {createTopic} from '../support/kafka.js'
import {devServiceSetting, uniqueName} from '../support/services.js'
import {clickhouseConsumeArgs, type ConsumeJson, describeRun, parseJson, produce} from './reliability-helpers.js'

/** The ClickHouse backend over HTTPS (the test ClickHouse's https_port, a throw-away CA). */

describe('ClickHouse over HTTPS', function () {
  this.timeout(120_000)
  let httpsUrl = ''
  let ca = ''
  before(() => {
    httpsUrl = devServiceSetting('DEV_CLICKHOUSE_HTTPS_URL')
    ca = devServiceSetting('DEV_CLICKHOUSE_CA')
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
})
