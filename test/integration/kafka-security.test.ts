import {expect} from 'chai'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {type CliResult, runIpc} from '../support/cli.js'
import {createTopic} from '../support/kafka.js'
import {devServiceSetting, uniqueName} from '../support/services.js'
import {clickhouseConsumeArgs, consumeArgs, type ConsumeJson, describeRun, parseJson, produceArgs, type ProduceJson} from '../support/runs.js'

/**
 * `ipc produce` and `ipc consume` against the secured listeners of the test broker
 * (scripts/kafka/secure-listeners.properties): SASL_SSL with PLAIN and SCRAM, SSL with client
 * certificates, SASL_PLAINTEXT with PLAIN only. The CA, certificates and password are made by
 * scripts/services when the broker's storage is formatted; nothing secret is in the repository.
 */

describe('Kafka security: SASL and TLS against the real broker', function () {
  this.timeout(180_000)
  // Read in before(): the global setup puts the addresses in the environment after files load.
  let saslSsl = ''
  let ssl = ''
  let saslPlaintext = ''
  let plaintext = ''
  let username = ''
  let passwordFile = ''
  let password = ''
  let ca = ''
  let clientTls: string[] = []
  const wrongPassword = 'Wr0ng-Pa55word-Never-Shown'
  before(() => {
    saslSsl = devServiceSetting('DEV_KAFKA_SASL_SSL_BROKERS')
    ssl = devServiceSetting('DEV_KAFKA_SSL_BROKERS')
    saslPlaintext = devServiceSetting('DEV_KAFKA_SASL_PLAINTEXT_BROKERS')
    plaintext = devServiceSetting('KAFKA_BROKERS')
    const tls = devServiceSetting('DEV_KAFKA_TLS_DIR')
    username = devServiceSetting('DEV_KAFKA_SASL_USERNAME')
    passwordFile = devServiceSetting('DEV_KAFKA_SASL_PASSWORD_FILE')
    password = readFileSync(passwordFile, 'utf8').trim()
    ca = join(tls, 'ca.crt')
    clientTls = ['--ssl-ca', ca, '--ssl-cert', join(tls, 'client.crt'), '--ssl-key', join(tls, 'client.key')]
  })
  const scram = (mechanism: string) => [
    '--brokers',
    saslSsl,
    '--sasl-mechanism',
    mechanism,
    '--sasl-username',
    username,
    '--sasl-password-file',
    passwordFile,
    '--ssl-ca',
    ca,
  ]
  /** Everything every run printed, for the secret-leak check. */
  const printed: string[] = []
  const run = async (args: string[]): Promise<CliResult> => {
    const result = await runIpc(args, {timeoutMs: 120_000})
    printed.push(result.stdout, result.stderr)
    return result
  }

  it('right credentials: produce with PLAIN, SCRAM-SHA-256/512 and SASL_PLAINTEXT, consume over mutual TLS and with a client properties file, the same exact count', async () => {
    const topic = uniqueName('secure')
    await createTopic(topic, 3)
    const produced = parseJson<ProduceJson>(
      await run([...produceArgs(topic, {'--num-devices': '800', '--num-messages': '3000', '--seed': '71', '--batch': '500'}), ...scram('SCRAM-SHA-512')]),
    )
    for (const extra of [
      scram('PLAIN'),
      scram('SCRAM-SHA-256'),
      ['--brokers', saslPlaintext, '--security-protocol', 'SASL_PLAINTEXT', '--sasl-username', username, '--sasl-password-file', passwordFile],
    ]) {
      // The first 10 events of the same seed: devices already counted, so the count stays the same.
      const more = await run([...produceArgs(topic, {'--num-devices': '800', '--num-messages': '10', '--seed': '71'}, {json: false}), ...extra])
      expect(more.code, describeRun(more)).to.equal(0)
    }
    const database = uniqueName('ipc_secure')
    const viaMutualTls = parseJson<ConsumeJson>(
      await run([...clickhouseConsumeArgs(topic, database, uniqueName('g'), {'--until-idle': '3s', '--brokers': ssl}), ...clientTls]),
    )
    expect(viaMutualTls.stats.processed).to.equal(3030)
    const counted = await run(['count', '--backend', 'clickhouse', '--clickhouse-database', database])
    expect(counted.stdout).to.equal(`${produced.distinctDevices}\n`)

    const dir = mkdtempSync(join(tmpdir(), 'ipc-kafka-config-'))
    const properties = join(dir, 'client.properties')
    writeFileSync(
      properties,
      [
        '# as written for the Java client',
        'security.protocol=SASL_SSL',
        'sasl.mechanism=SCRAM-SHA-256',
        `sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="${username}" password="${password}";`,
        `ssl.ca.location=${ca}`,
      ].join('\n'),
    )
    const viaProperties = parseJson<ConsumeJson>(
      await run(consumeArgs(topic, uniqueName('g'), {'--brokers': saslSsl, '-F': properties, '--backend': 'memory', '--until-idle': '3s'})),
    )
    expect(viaProperties.totalDevices).to.equal(produced.distinctDevices)
  })

  it('every wrong setting: exit 3 and one line naming the broker and the cause, no secret, no stack trace', async () => {
    const topic = uniqueName('secure_fail')
    await createTopic(topic, 1)
    const cases: Array<{what: string; args: string[]; broker: string; cause: RegExp}> = [
      {
        what: 'wrong password',
        args: ['--brokers', saslSsl, '--sasl-mechanism', 'SCRAM-SHA-512', '--sasl-username', username, '--sasl-password', wrongPassword, '--ssl-ca', ca],
        broker: saslSsl,
        cause: /Kafka authentication failed at .*invalid credentials/,
      },
      {
        what: 'unknown user',
        args: ['--brokers', saslSsl, '--sasl-mechanism', 'PLAIN', '--sasl-username', 'nobody', '--sasl-password', wrongPassword, '--ssl-ca', ca],
        broker: saslSsl,
        cause: /Kafka authentication failed at .*(invalid|failed)/i,
      },
      {
        what: 'mechanism the listener does not offer',
        args: [
          '--brokers',
          saslPlaintext,
          '--security-protocol',
          'SASL_PLAINTEXT',
          '--sasl-mechanism',
          'SCRAM-SHA-512',
          '--sasl-username',
          username,
          '--sasl-password-file',
          passwordFile,
        ],
        broker: saslPlaintext,
        cause: /Kafka authentication failed at .*does not support the requested SASL mechanism/,
      },
      {
        what: 'server certificate not trusted',
        args: [...scram('SCRAM-SHA-512')].filter((arg) => arg !== ca && arg !== '--ssl-ca'),
        broker: saslSsl,
        cause: /certificate is not trusted/,
      },
      {
        what: 'no client certificate',
        args: ['--brokers', ssl, '--ssl-ca', ca],
        broker: ssl,
        cause: /TLS handshake failed: the broker refused the client certificate/,
      },
      {
        what: 'plaintext client, TLS port',
        args: ['--brokers', saslSsl],
        broker: saslSsl,
        cause: /closed the connection: a TLS or SASL listener\? set --security-protocol/,
      },
      {
        what: 'TLS client, plaintext port',
        args: ['--brokers', plaintext, '--security-protocol', 'SSL', '--ssl-ca', ca],
        broker: plaintext,
        cause: /TLS handshake failed/,
      },
    ]
    const results = await Promise.all(
      cases.flatMap(({args}) => [
        run([...produceArgs(topic, {'--num-messages': '10'}, {json: false}), ...args]),
        run([...consumeArgs(topic, uniqueName('g'), {'--backend': 'memory', '--until-idle': '2s'}, {json: false, fromBeginning: false}), ...args]),
      ]),
    )
    for (const [index, result] of results.entries()) {
      const {what, broker, cause} = cases[Math.floor(index / 2)]
      const label = `${index % 2 === 0 ? 'produce' : 'consume'}: ${what}`
      expect(result.code, `${label}: ${describeRun(result)}`).to.equal(3)
      const lines = result.stderr.split('\n').filter(Boolean)
      expect(lines, `${label}: one line`).to.have.lengthOf(1)
      expect(lines[0], label).to.include(broker).and.match(cause)
      expect(result.stderr, label).to.not.match(/^\s+at /m)
    }
  })

  it('no run printed a password', () => {
    expect(printed.length).to.be.greaterThan(0)
    for (const output of printed) {
      expect(output).to.not.include(password)
      expect(output).to.not.include(wrongPassword)
    }
  })
})
