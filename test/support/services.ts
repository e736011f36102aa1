import {createClient as createRedisClient} from '@redis/client'

/** Addresses of the real services the integration tests use, as set by the global setup. */

export class ServicesNotConfiguredError extends Error {
  override name = 'ServicesNotConfiguredError'
}

export interface ServiceUrls {
  kafkaBrokers: string[]
  redisUrl: string
  clickhouseUrl: string
}

function required(name: string): string {
  const value = process.env[name]?.trim()
  if (!value) {
    throw new ServicesNotConfiguredError(
      `${name} is not set: run the tests through mocha with .mocharc.json (its global setup starts the services), ` +
        `or start them with scripts/services up and eval "$(scripts/services env)"`,
    )
  }
  return value
}

/** The service addresses from KAFKA_BROKERS, REDIS_URL and CLICKHOUSE_URL. */
export function serviceUrls(): ServiceUrls {
  return {
    kafkaBrokers: required('KAFKA_BROKERS')
      .split(',')
      .map((broker) => broker.trim())
      .filter(Boolean),
    redisUrl: redisUrl(),
    clickhouseUrl: clickhouseUrl(),
  }
}

/** REDIS_URL alone, for tests that need no other service. */
export function redisUrl(): string {
  return required('REDIS_URL')
}

/** PFCOUNT of `key` in the Redis at REDIS_URL, read over a connection of its own. */
export async function redisCount(key: string): Promise<number> {
  const client = createRedisClient({url: redisUrl()})
  await client.connect()
  try {
    return await client.pfCount(key)
  } finally {
    await client.close()
  }
}

/** CLICKHOUSE_URL alone, for tests that need no other service. */
export function clickhouseUrl(): string {
  return required('CLICKHOUSE_URL')
}

const PREFIX = /^[A-Za-z0-9_.:-]{1,100}$/
let counter = 0

/**
 * A name no other test (in this run or an earlier one against the same services) uses:
 * `prefix_<time>_<pid>_<n>_<random>`. The suffix is only lower-case letters, digits and `_`, so
 * the name is valid wherever the prefix is: with a prefix of letters, digits and `_` it serves
 * as a Kafka topic, a consumer group, a Redis key and a ClickHouse database or table alike.
 */
export function uniqueName(prefix: string): string {
  if (!PREFIX.test(prefix)) {
    throw new RangeError(`uniqueName prefix "${prefix}" must be 1-100 letters, digits, "_", ".", ":" or "-"`)
  }
  counter += 1
  const random = Math.floor(Math.random() * 36 ** 4)
    .toString(36)
    .padStart(4, '0')
  return `${prefix}_${Date.now().toString(36)}_${process.pid}_${counter}_${random}`
}

/** A setting `scripts/services env` gives while the services run (e.g. DEV_KAFKA_TLS_DIR); read it in before(). */
export function devServiceSetting(name: string): string {
  const value = process.env[name]
  if (!value) throw new ServicesNotConfiguredError(`${name} is not set: scripts/services env gives it while the services run`)
  return value
}
