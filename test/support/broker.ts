import {createConnection} from 'node:net'

/**
 * Client for the dev broker's control port (scripts/mock-broker.c): one command per line, one
 * reply per line, `ok [detail]` or `error <reason>`. The address comes from KAFKA_CONTROL, which
 * the global setup sets from `scripts/services env`. A real Kafka broker has no such port, so
 * tests that use it belong to the dev-broker environment.
 */

export class BrokerControlError extends Error {
  override name = 'BrokerControlError'
}

/** Kafka protocol request types (ApiKey) that fault-injection tests commonly target. */
export const ApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
} as const

/** Kafka protocol error codes, plus librdkafka's TRANSPORT (-195) which makes the broker drop the connection. */
export const KafkaErrorCode = {
  Transport: -195,
  UnknownTopicOrPartition: 3,
  NotLeaderForPartition: 6,
  RequestTimedOut: 7,
  MessageTooLarge: 10,
  CoordinatorNotAvailable: 15,
  NotCoordinator: 16,
  RebalanceInProgress: 27,
} as const

export interface ControlAddress {
  host: string
  port: number
}

/** The control address from KAFKA_CONTROL (`host:port`). */
export function controlAddress(): ControlAddress {
  const value = process.env.KAFKA_CONTROL?.trim()
  if (!value) {
    throw new BrokerControlError(
      'KAFKA_CONTROL is not set: the dev broker control port is only available when the tests run against scripts/services',
    )
  }
  const match = /^(.+):(\d{1,5})$/.exec(value)
  const port = match ? Number(match[2]) : Number.NaN
  if (!match || port < 1 || port > 65_535) throw new BrokerControlError(`invalid KAFKA_CONTROL "${value}": use host:port`)
  return {host: match[1], port}
}

/**
 * Sends one command and resolves with the text after `ok` (often empty); rejects with a
 * BrokerControlError for an `error …` reply, a connection failure or no reply within `timeoutMs`.
 */
export function brokerControl(command: string, timeoutMs = 10_000): Promise<string> {
  if (/[\r\n]/.test(command) || command.trim() === '') {
    return Promise.reject(new BrokerControlError(`invalid control command ${JSON.stringify(command)}`))
  }
  const {host, port} = controlAddress()
  return new Promise((resolve, reject) => {
    const socket = createConnection({host, port})
    let received = ''
    let settled = false
    const finish = (error: Error | undefined, value?: string) => {
      if (settled) return
      settled = true
      socket.destroy()
      if (error) reject(error)
      else resolve(value ?? '')
    }
    socket.setEncoding('utf8')
    socket.setTimeout(timeoutMs, () =>
      finish(new BrokerControlError(`no reply from the dev broker at ${host}:${port} to "${command}" within ${timeoutMs} ms`)),
    )
    socket.on('connect', () => socket.write(`${command}\n`))
    socket.on('data', (chunk: string) => {
      received += chunk
      const end = received.indexOf('\n')
      if (end === -1) return
      const reply = received.slice(0, end).trim()
      if (reply === 'ok' || reply.startsWith('ok ')) finish(undefined, reply.slice(2).trim())
      else finish(new BrokerControlError(`dev broker rejected "${command}": ${reply.replace(/^error\s*/, '')}`))
    })
    socket.on('error', (error) =>
      finish(new BrokerControlError(`cannot reach the dev broker control port ${host}:${port}: ${error.message}`)),
    )
    socket.on('close', () => finish(new BrokerControlError(`the dev broker closed the control connection without replying to "${command}"`)))
  })
}

function checkInteger(what: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new BrokerControlError(`${what} must be an integer in ${min}..${max}, got ${value}`)
  }
}

/** Creates a topic with exactly `partitions` partitions (auto-created topics get 4). */
export async function createTopic(name: string, partitions: number, replication?: number): Promise<void> {
  if (!/^[A-Za-z0-9._-]{1,249}$/.test(name)) throw new BrokerControlError(`invalid topic name "${name}"`)
  checkInteger('partitions', partitions, 1, 100_000)
  if (replication !== undefined) checkInteger('replication', replication, 1, 16)
  await brokerControl(`topic-create ${name} ${partitions}${replication === undefined ? '' : ` ${replication}`}`)
}

/** Drops the broker's connections and refuses new ones (`-1`: every broker). */
export async function brokerDown(id: number): Promise<void> {
  checkInteger('broker id', id, -1, 16)
  await brokerControl(`broker-down ${id}`)
}

/** Lets the broker accept connections again (`-1`: every broker). */
export async function brokerUp(id: number): Promise<void> {
  checkInteger('broker id', id, -1, 16)
  await brokerControl(`broker-up ${id}`)
}

/** Delays every response of the broker by `ms` (0 restores normal speed; `-1`: every broker). */
export async function setBrokerRtt(id: number, ms: number): Promise<void> {
  checkInteger('broker id', id, -1, 16)
  checkInteger('rtt', ms, 0, 3_600_000)
  await brokerControl(`broker-rtt ${id} ${ms}`)
}

/** Makes the next `codes.length` requests of type `apiKey` fail with these error codes, in order. */
export async function pushRequestErrors(apiKey: number, codes: readonly number[]): Promise<void> {
  checkInteger('apiKey', apiKey, 0, 32_767)
  if (codes.length === 0) throw new BrokerControlError('pushRequestErrors needs at least one error code')
  for (const code of codes) checkInteger('error code', code, -200, 32_767)
  await brokerControl(`request-errors ${apiKey} ${codes.join(' ')}`)
}

/** Forgets the request errors still queued for `apiKey`. */
export async function clearRequestErrors(apiKey: number): Promise<void> {
  checkInteger('apiKey', apiKey, 0, 32_767)
  await brokerControl(`request-errors-clear ${apiKey}`)
}
