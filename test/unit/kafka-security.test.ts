import {expect} from 'chai'
import {Parser} from '@oclif/core'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {KafkaSecurityError, mergeSettings, parseProperties, readClientProperties, resolveSecurity, settingsFromProperties} from '../../src/kafka/security.js'
import {kafkaSecurityFlags, kafkaSecurityFromFlags} from '../../src/cli/kafka-security-flags.js'

const dir = mkdtempSync(join(tmpdir(), 'ipc-security-'))
function file(name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

describe('Kafka client security settings', () => {
  it('reads Java-style properties: = or : separators, comments, continuation lines', () => {
    const properties = parseProperties('# comment\n! also\nsecurity.protocol=SASL_SSL\nsasl.mechanism : SCRAM-SHA-512\nsasl.jaas.config=a \\\n  b\n\nempty\n')
    expect([...properties]).to.deep.equal([
      ['security.protocol', 'SASL_SSL'],
      ['sasl.mechanism', 'SCRAM-SHA-512'],
      ['sasl.jaas.config', 'a b'],
      ['empty', ''],
    ])
  })

  it('maps kcat and Java client property names, and credentials from a JAAS line', () => {
    const kcat = settingsFromProperties(
      parseProperties(
        'security.protocol=SASL_SSL\nsasl.mechanisms=SCRAM-SHA-256\nsasl.username=u\nsasl.password=p\n' +
          'ssl.ca.location=/ca.pem\nenable.ssl.certificate.verification=false\n',
      ),
    )
    expect(kcat).to.deep.equal({
      protocol: 'SASL_SSL',
      saslMechanism: 'SCRAM-SHA-256',
      saslUsername: 'u',
      saslPassword: 'p',
      caFile: '/ca.pem',
      verifyCertificates: false,
    })
    const java = settingsFromProperties(
      parseProperties(
        'sasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="s3cr=t";\n',
      ),
    )
    expect(java).to.deep.equal({saslMechanism: 'PLAIN', saslUsername: 'alice', saslPassword: 's3cr=t'})
  })

  it('lets flags override the file, and unset flags leave it alone', () => {
    const merged = mergeSettings(
      {protocol: 'SASL_SSL', saslUsername: 'file-user', saslPassword: 'file-pw'},
      {saslUsername: 'flag-user', saslPassword: undefined},
    )
    expect(merged).to.deep.equal({protocol: 'SASL_SSL', saslUsername: 'flag-user', saslPassword: 'file-pw'})
  })

  it('gives kafkajs TLS with the CA, client certificate and verification, and SASL with the mechanism', () => {
    const ca = file('ca.pem', 'CA PEM')
    const cert = file('cert.pem', 'CERT PEM')
    const key = file('key.pem', 'KEY PEM')
    const password = file('password', 'from-file\nignored\n')
    const security = resolveSecurity({saslMechanism: 'scram-sha-512', saslUsername: 'u', saslPasswordFile: password, caFile: ca, certFile: cert, keyFile: key})
    expect(security.protocol, 'SASL credentials default to SASL_SSL').to.equal('SASL_SSL')
    expect(security.ssl).to.deep.equal({rejectUnauthorized: true, ca: 'CA PEM', cert: 'CERT PEM', key: 'KEY PEM'})
    expect(security.sasl).to.deep.equal({mechanism: 'scram-sha-512', username: 'u', password: 'from-file'})
    expect(resolveSecurity({caFile: ca}).protocol, 'TLS files alone default to SSL').to.equal('SSL')
    expect(resolveSecurity({}).protocol).to.equal('PLAINTEXT')
    expect(resolveSecurity({protocol: 'ssl', verifyCertificates: false}).ssl).to.deep.equal({rejectUnauthorized: false})
  })

  it('refuses incomplete or contradictory settings with a KafkaSecurityError that names what is missing', () => {
    const cases: Array<[Parameters<typeof resolveSecurity>[0], RegExp]> = [
      [{protocol: 'SASL_SSL', saslPassword: 'p'}, /needs a SASL username/],
      [{protocol: 'SASL_PLAINTEXT', saslUsername: 'u'}, /needs a SASL password/],
      [{protocol: 'SASL_SSL', saslUsername: 'u', saslPassword: 'p', saslMechanism: 'GSSAPI'}, /unknown SASL mechanism "GSSAPI"/],
      [{protocol: 'TLS'}, /unknown security protocol "TLS": use PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL/],
      [{protocol: 'PLAINTEXT', saslUsername: 'u', saslPassword: 'p'}, /SASL settings were given but the security protocol is PLAINTEXT/],
      [
        {protocol: 'SASL_PLAINTEXT', saslUsername: 'u', saslPassword: 'p', caFile: '/ca.pem'},
        /TLS files were given but the security protocol is SASL_PLAINTEXT/,
      ],
      [{protocol: 'SSL', certFile: file('only-cert.pem', 'x')}, /give both --ssl-cert and --ssl-key/],
      [{protocol: 'SSL', caFile: join(dir, 'missing.pem')}, /cannot read the CA file .*missing\.pem: ENOENT/],
    ]
    for (const [settings, message] of cases) expect(() => resolveSecurity(settings), JSON.stringify(settings)).to.throw(KafkaSecurityError, message)
    expect(() => readClientProperties(join(dir, 'none.properties'))).to.throw(KafkaSecurityError, /cannot read the Kafka client properties/)
  })

  it('never puts the password in an error message', () => {
    const secret = 'Sup3r-Secret-Pw'
    for (const settings of [
      {protocol: 'SASL_SSL', saslPassword: secret},
      {protocol: 'PLAINTEXT', saslUsername: 'u', saslPassword: secret},
      {protocol: 'SASL_SSL', saslUsername: 'u', saslPassword: secret, saslMechanism: 'NOPE'},
    ]) {
      const error = (() => {
        try {
          resolveSecurity(settings)
        } catch (caught) {
          return caught as Error
        }
        throw new Error('expected a KafkaSecurityError')
      })()
      expect(error.message).to.not.include(secret)
    }
  })
})

/** What `action` writes to stderr (and nothing reaches the real stderr meanwhile). */
function stderrOf(action: () => void): string {
  let written = ''
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string | Uint8Array) => {
    written += String(chunk)
    return true
  }) as typeof process.stderr.write
  try {
    action()
  } finally {
    process.stderr.write = write
  }
  return written
}

describe('Kafka security flags', () => {
  it('every flag has an environment fallback; --ssl-no-verify reads KAFKA_SSL_NO_VERIFY', async () => {
    for (const [name, flag] of Object.entries(kafkaSecurityFlags)) expect(flag.env, name).to.match(/^KAFKA_[A-Z_]+$/)
    expect(kafkaSecurityFlags['ssl-no-verify'].env).to.equal('KAFKA_SSL_NO_VERIFY')
    const saved = process.env.KAFKA_SSL_NO_VERIFY
    try {
      delete process.env.KAFKA_SSL_NO_VERIFY
      expect((await Parser.parse([], {flags: kafkaSecurityFlags})).flags['ssl-no-verify']).to.equal(false)
      process.env.KAFKA_SSL_NO_VERIFY = 'true'
      expect((await Parser.parse([], {flags: kafkaSecurityFlags})).flags['ssl-no-verify']).to.equal(true)
    } finally {
      if (saved === undefined) delete process.env.KAFKA_SSL_NO_VERIFY
      else process.env.KAFKA_SSL_NO_VERIFY = saved
    }
  })

  it('--ssl-no-verify turns verification off and says so on stderr; verified TLS says nothing', () => {
    let security: ReturnType<typeof kafkaSecurityFromFlags> | undefined
    const warning = stderrOf(() => (security = kafkaSecurityFromFlags({'security-protocol': 'SSL', 'ssl-no-verify': true}, 'consume')))
    expect(security?.ssl).to.deep.equal({rejectUnauthorized: false})
    expect(warning).to.equal("ipc consume: warning: the Kafka brokers' TLS certificates are not verified\n")
    expect(stderrOf(() => kafkaSecurityFromFlags({'security-protocol': 'SSL'}, 'produce'))).to.equal('')
  })
})
