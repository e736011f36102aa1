import {expect} from 'chai'
import {readFileSync} from 'node:fs'
import {type CliResult, runIpc} from '../support/cli.js'
import {createTopic} from '../support/kafka.js'
import {startServe} from '../support/serve.js'
import {devServiceSetting, redisUrl, uniqueName} from '../support/services.js'
import {describeRun, produce, redisConsumeArgs} from '../support/runs.js'

/**
 * The Redis backend against the test Redis's TLS port and ACL user (scripts/services.d/redis.sh):
 * a throw-away CA and password made at start-up, nothing secret in the repository.
 */

describe('Redis security: TLS and ACL users against the real Redis', function () {
  this.timeout(120_000)
  let tlsUrl = ''
  let ca = ''
  let username = ''
  let password = ''
  const wrongPassword = 'Wr0ng-Redis-Pa55word'
  const printed: string[] = []
  before(() => {
    tlsUrl = devServiceSetting('DEV_REDIS_TLS_URL')
    ca = devServiceSetting('DEV_REDIS_CA')
    username = devServiceSetting('DEV_REDIS_USERNAME')
    password = readFileSync(devServiceSetting('DEV_REDIS_PASSWORD_FILE'), 'utf8').trim()
  })
  const run = async (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> => {
    const result = await runIpc(args, {env, timeoutMs: 60_000})
    printed.push(result.stdout, result.stderr)
    return result
  }

  it('consume and count over TLS with an ACL user give the same count as over plaintext', async () => {
    const topic = uniqueName('redis_tls')
    await createTopic(topic, 2)
    await produce(topic, {'--num-devices': '1500', '--num-messages': '5000', '--seed': '81'})
    const secureKey = uniqueName('ipc:tls')
    const plainKey = uniqueName('ipc:plain')
    const secure = ['--backend', 'redis', '--redis-url', tlsUrl, '--redis-ca', ca, '--redis-user', username]
    const env = {REDIS_PASSWORD: password}
    const consumeInto = (key: string, flags: Record<string, string>) => redisConsumeArgs(topic, key, uniqueName('g'), {...flags, '--until-idle': '2s'})
    const consumed = await run(consumeInto(secureKey, {'--redis-url': tlsUrl, '--redis-ca': ca, '--redis-user': username}), env)
    expect(consumed.code, describeRun(consumed)).to.equal(0)
    expect((await run(consumeInto(plainKey, {'--redis-url': redisUrl()}))).code).to.equal(0)
    const overTls = await run(['count', '--redis-key', secureKey, ...secure], env)
    const overPlaintext = await run(['count', '--backend', 'redis', '--redis-url', redisUrl(), '--redis-key', plainKey])
    expect(overTls.code, describeRun(overTls)).to.equal(0)
    expect(Number(overTls.stdout)).to.be.greaterThan(1400)
    expect(overTls.stdout).to.equal(overPlaintext.stdout)

    // ipc serve over the same TLS port as the same user, the password in the URL this time.
    const withPassword = new URL(tlsUrl)
    withPassword.username = username
    withPassword.password = password
    const serve = await startServe(['--backend', 'redis', '--redis-url', withPassword.href, '--redis-ca', ca, '--redis-key', secureKey])
    try {
      const answers = await Promise.all(['/unique_ip_count', '/healthz', '/metrics', '/'].map(async (path) => (await fetch(`${serve.url}${path}`)).text()))
      expect(JSON.parse(answers[0])).to.deep.equal({unique_device_ip_count: Number(overTls.stdout)})
      expect(JSON.parse(answers[1])).to.include({status: 'ok'})
      printed.push(...answers)
    } finally {
      const stopped = await serve.stop()
      printed.push(stopped.stdout, stopped.stderr)
    }
  })

  it('wrong password, untrusted certificate, plaintext against the TLS port, TLS against the plaintext port: exit 3, one line, no secret', async () => {
    const plainPort = new URL(redisUrl()).port
    const tlsPort = new URL(tlsUrl).port
    const cases: Array<{what: string; args: string[]; env?: NodeJS.ProcessEnv; cause: RegExp}> = [
      {
        what: 'wrong password',
        args: ['--redis-url', tlsUrl, '--redis-ca', ca, '--redis-user', username],
        env: {REDIS_PASSWORD: wrongPassword},
        cause: /WRONGPASS|invalid username-password/,
      },
      {
        what: 'unknown user',
        args: ['--redis-url', tlsUrl, '--redis-ca', ca, '--redis-user', 'nobody'],
        env: {REDIS_PASSWORD: password},
        cause: /WRONGPASS|invalid username-password/,
      },
      {what: 'untrusted certificate', args: ['--redis-url', tlsUrl, '--redis-user', username], env: {REDIS_PASSWORD: password}, cause: /certificate/},
      {what: 'plaintext client, TLS port', args: ['--redis-url', `redis://127.0.0.1:${tlsPort}`], cause: /closed the connection.*rediss:\/\//},
      {what: 'TLS client, plaintext port', args: ['--redis-url', `rediss://127.0.0.1:${plainPort}`, '--redis-ca', ca], cause: /TLS handshake failed/},
    ]
    const results = await Promise.all(cases.map(({args, env}) => run(['count', '--backend', 'redis', '--redis-key', uniqueName('ipc:never'), ...args], env)))
    for (const [index, result] of results.entries()) {
      const {what, cause} = cases[index]
      expect(result.code, `${what}: ${describeRun(result)}`).to.equal(3)
      const lines = result.stderr.split('\n').filter(Boolean)
      expect(lines, `${what}: one line`).to.have.lengthOf(1)
      expect(lines[0], what)
        .to.match(/127\.0\.0\.1:\d+/)
        .and.match(cause)
      expect(result.stderr, what).to.not.match(/^\s+at /m)
    }
  })

  it('--help shows no password given in the environment', async () => {
    for (const command of ['consume', 'count', 'serve']) {
      const help = await run([command, '--help'], {REDIS_PASSWORD: password})
      expect(help.stdout).to.contain('--redis-password')
    }
  })

  it('no run printed or served a password', () => {
    expect(printed.length).to.be.greaterThan(0)
    for (const output of printed) {
      expect(output).to.not.include(password)
      expect(output).to.not.include(wrongPassword)
    }
  })
})
