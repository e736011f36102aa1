import {Flags} from '@oclif/core'
import {type KafkaSecurity, mergeSettings, readClientProperties, resolveSecurity, SASL_MECHANISMS, SECURITY_PROTOCOLS} from '../kafka/security.js'
import {writeStderr} from './output.js'

/**
 * Kafka security flags of `ipc consume` and `ipc produce`, named after the librdkafka / kcat
 * properties they set. `--kafka-config` reads those properties from a file (as `kcat -F`); a flag
 * given as well overrides the file.
 */
export const kafkaSecurityFlags = {
  'kafka-config': Flags.string({
    description:
      'Kafka client properties file (kcat -F / Java client style: security.protocol, sasl.mechanism(s), ' +
      'sasl.username, sasl.password, sasl.jaas.config, ssl.ca.location, ssl.certificate.location, ' +
      'ssl.key.location, ssl.key.password, enable.ssl.certificate.verification). Flags override it.',
    env: 'KAFKA_CONFIG',
    char: 'F',
  }),
  'security-protocol': Flags.string({
    description: 'PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL. Default: SASL_SSL with SASL credentials, SSL with TLS files, else PLAINTEXT.',
    env: 'KAFKA_SECURITY_PROTOCOL',
    options: [...SECURITY_PROTOCOLS],
  }),
  'sasl-mechanism': Flags.string({
    description: 'SASL mechanism. Default: PLAIN.',
    env: 'KAFKA_SASL_MECHANISM',
    options: [...SASL_MECHANISMS],
  }),
  'sasl-username': Flags.string({description: 'SASL username.', env: 'KAFKA_SASL_USERNAME'}),
  'sasl-password': Flags.string({
    description: 'SASL password. Prefer --sasl-password-file or the environment: a flag shows in ps and shell history.',
    env: 'KAFKA_SASL_PASSWORD',
  }),
  'sasl-password-file': Flags.string({description: 'File whose first line is the SASL password.', env: 'KAFKA_SASL_PASSWORD_FILE'}),
  'ssl-ca': Flags.string({
    description: "PEM file of the CA certificates that sign the brokers' certificates. Default: the system CAs.",
    env: 'KAFKA_SSL_CA_LOCATION',
  }),
  'ssl-cert': Flags.string({description: 'PEM client certificate, for brokers that require one (mutual TLS).', env: 'KAFKA_SSL_CERTIFICATE_LOCATION'}),
  'ssl-key': Flags.string({description: 'PEM private key of --ssl-cert.', env: 'KAFKA_SSL_KEY_LOCATION'}),
  'ssl-key-password': Flags.string({description: 'Password of an encrypted --ssl-key.', env: 'KAFKA_SSL_KEY_PASSWORD'}),
  'ssl-no-verify': Flags.boolean({
    description: "Do not check the brokers' certificates (insecure: anyone in the path can read and change the stream). Says so on stderr.",
    env: 'KAFKA_SSL_NO_VERIFY',
    default: false,
  }),
}

interface KafkaSecurityFlagValues {
  'kafka-config'?: string
  'security-protocol'?: string
  'sasl-mechanism'?: string
  'sasl-username'?: string
  'sasl-password'?: string
  'sasl-password-file'?: string
  'ssl-ca'?: string
  'ssl-cert'?: string
  'ssl-key'?: string
  'ssl-key-password'?: string
  'ssl-no-verify'?: boolean
}

/** The security the flags (over the properties file, if any) ask for; files are read here. */
export function kafkaSecurityFromFlags(flags: KafkaSecurityFlagValues, command: string): KafkaSecurity {
  const fromFile = flags['kafka-config'] ? readClientProperties(flags['kafka-config']) : {}
  const settings = mergeSettings(fromFile, {
    protocol: flags['security-protocol'],
    saslMechanism: flags['sasl-mechanism'],
    saslUsername: flags['sasl-username'],
    saslPassword: flags['sasl-password'],
    saslPasswordFile: flags['sasl-password-file'],
    caFile: flags['ssl-ca'],
    certFile: flags['ssl-cert'],
    keyFile: flags['ssl-key'],
    keyPassword: flags['ssl-key-password'],
    verifyCertificates: flags['ssl-no-verify'] ? false : undefined,
  })
  const security = resolveSecurity(settings)
  if (security.ssl && security.ssl.rejectUnauthorized === false) {
    writeStderr(`ipc ${command}: warning: the Kafka brokers' TLS certificates are not verified`)
  }
  return security
}
