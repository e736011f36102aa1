import {type ClickHouseClient, createClient} from '@clickhouse/client'
import {expect} from 'chai'
import http from 'node:http'
import {ClickHouseBackend} from '../../src/backends/clickhouse/clickhouse-backend.js'
import {HOUR_MS} from '../../src/query/count-query.js'
import {type CliResult, type RunningCli, startIpc, waitFor} from '../support/cli.js'
import {clickhouseUrl, uniqueName} from '../support/services.js'
import {CLEAN_ENV, exactCount, exactSeries, iso, windowEvents} from './windows-fixture.js'

const LISTENING = /ipc serve: listening on (http:\/\/127\.0\.0\.1:\d+) /

function getJson(baseUrl: string, path: string): Promise<{status: number; body: Record<string, unknown>}> {
  return new Promise((resolve, reject) => {
    const request = http.get(new URL(path, baseUrl), {agent: false, timeout: 10_000}, (response) => {
      let text = ''
      response.setEncoding('utf8').on('data', (chunk: string) => (text += chunk))
      response.on('end', () => {
        try {
          resolve({status: response.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown>})
        } catch (error) {
          reject(error)
        }
      })
    })
    request.on('timeout', () => request.destroy(new Error(`GET ${path}: no answer within 10 s`)))
    request.on('error', reject)
  })
}

describe('ipc serve: /unique_ip_count with since, until, error_code and by (clickhouse)', () => {
  const database = uniqueName('ipc_test_serve_windows')
  const {baseMs, events} = windowEvents()
  const at = (hour: number, minute = 0) => baseMs + hour * HOUR_MS + minute * 60_000
  let admin: ClickHouseClient
  let serve: RunningCli
  let url: string

  before(async () => {
    admin = createClient({url: clickhouseUrl(), request_timeout: 10_000})
    const clickhouse = new ClickHouseBackend({
      clickhouseUrl: clickhouseUrl(),
      clickhouseUser: 'default',
      clickhousePassword: '',
      clickhouseDatabase: database,
    })
    await clickhouse.connect()
    await clickhouse.add(events)
    await clickhouse.close()
    serve = startIpc(
      [
        'serve',
        '--port',
        '0',
        '--host',
        '127.0.0.1',
        '--backend',
        'clickhouse',
        '--clickhouse-url',
        clickhouseUrl(),
        '--clickhouse-database',
        database,
        '--cache-ms',
        '0',
      ],
      {
        env: CLEAN_ENV,
      },
    )
    let exited: CliResult | undefined
    void serve.done.then((result) => (exited = result))
    url = (
      await waitFor('ipc serve to print its address', () => {
        if (exited) throw new Error(`ipc serve exited with ${exited.code}: ${exited.stderr}`)
        return LISTENING.exec(serve.stderr()) ?? undefined
      })
    )[1]
  })

  after(async () => {
    serve?.child.kill('SIGTERM')
    await serve?.done
    await admin.command({query: `DROP DATABASE IF EXISTS \`${database}\``})
    await admin.close()
  })

  it('answers the plain all-time count as before when none of these parameters is given', async () => {
    const plain = {status: 200, body: {unique_device_ip_count: exactCount(events, {errorCodes: []})}}
    expect(await getJson(url, '/unique_ip_count')).to.deep.equal(plain)
    expect(await getJson(url, '/unique_ip_count?pretty=1&_=123')).to.deep.equal(plain)
  })

  it('counts a range and error codes exactly, and describes the query', async () => {
    const since = at(1, 17) + 3
    const until = at(4, 41)
    const answer = await getJson(url, `/unique_ip_count?since=${encodeURIComponent(iso(since))}&until=${until}&error_code=1&error_code=9,2`)
    expect(answer).to.deep.equal({
      status: 200,
      body: {
        unique_device_ip_count: exactCount(events, {sinceMs: since, untilMs: until, errorCodes: [1, 2, 9]}),
        exact: true,
        since: iso(since),
        until: iso(until),
        error_codes: [1, 2, 9],
      },
    })
  })

  it('answers a series per hour with by=hour', async () => {
    const query = {sinceMs: at(0, 30), untilMs: at(5, 30), errorCodes: [4]}
    const answer = await getJson(url, `/unique_ip_count?since=${query.sinceMs}&until=${query.untilMs}&error_code=4&by=hour`)
    expect(answer.status).to.equal(200)
    expect(answer.body).to.deep.include({by: 'hour', unique_device_ip_count: exactCount(events, query)})
    expect(answer.body.series).to.deep.equal(exactSeries(events, query, 'hour').map((point) => ({bucket: iso(point.startMs), count: point.count})))
  })

  it('reads relative times against now (since=24h covers all the events)', async () => {
    const answer = await getJson(url, '/unique_ip_count?since=24h')
    expect(answer.status).to.equal(200)
    expect(answer.body.unique_device_ip_count).to.equal(exactCount(events, {errorCodes: []}))
  })

  it('answers 400 JSON for invalid or repeated parameters', async () => {
    for (const [path, message] of [
      ['/unique_ip_count?since=yesterday', 'invalid since "yesterday"'],
      ['/unique_ip_count?error_code=300', 'invalid error_code "300"'],
      ['/unique_ip_count?by=hour', 'by needs since'],
      ['/unique_ip_count?since=1h&until=2h', 'must be before until'],
      ['/unique_ip_count?since=1h&since=2h', '"since" given more than once'],
    ]) {
      const answer = await getJson(url, path)
      expect(answer.status, path).to.equal(400)
      expect(answer.body.error, path).to.be.a('string').and.include(message)
    }
  })
})
