import {expect} from 'chai'
import {createServer} from 'node:net'
import {type CliResult, runIpc} from '../support/cli.js'
import {serviceUrls, uniqueName} from '../support/services.js'
import {produceArgs, redisConsumeArgs} from '../support/runs.js'

/**
 * What `ipc consume` and `ipc produce` say when --brokers does not lead to a usable topic: one line
 * on stderr and exit 3, for a port that is not Kafka's, a port with nothing on it, and a topic that
 * does not exist on the test broker (which runs with auto.create.topics.enable=false).
 */

/** A loopback port that nothing listens on (bound once by the OS, then released). */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as {port: number}
  await new Promise((resolve) => server.close(resolve))
  return port
}

function consumeFrom(brokers: string, topic: string): string[] {
  return redisConsumeArgs(topic, uniqueName('ipc:never'), uniqueName('g'), {'--brokers': brokers, '--until-idle': '2s'}, {json: false, fromBeginning: false})
}

function produceTo(brokers: string, topic: string): string[] {
  return produceArgs(topic, {'--brokers': brokers, '--num-messages': '10'}, {json: false})
}

function expectOneLine(result: CliResult, pattern: RegExp): void {
  expect(result.code, `exit code; stderr: ${result.stderr}`).to.equal(3)
  expect(result.stdout).to.equal('')
  expect(result.stderr.split('\n').filter(Boolean), result.stderr).to.have.lengthOf(1)
  expect(result.stderr).to.match(pattern)
}

describe('ipc consume and ipc produce with brokers or topics that are not there', function () {
  this.timeout(150_000)

  it('a Redis port given as the broker: one line naming the address, exit 3', async () => {
    const redis = new URL(serviceUrls().redisUrl)
    const address = `127.0.0.1:${redis.port}`
    const topic = uniqueName('never')
    // kafkajs waits out its 30 s request timeout for the handshake that Redis never answers.
    const [consumed, produced] = await Promise.all([
      runIpc(consumeFrom(address, topic), {timeoutMs: 140_000}),
      runIpc(produceTo(address, topic), {timeoutMs: 140_000}),
    ])
    const line = (command: string) =>
      new RegExp(
        `^ipc ${command}: no Kafka broker answered at ${address.replaceAll('.', '\\.')} \\(.*\\): is it a ` +
          `Kafka broker's port, and its security protocol\\?\\n$`,
      )
    expectOneLine(consumed, line('consume'))
    expectOneLine(produced, line('produce'))
  })

  it('a port with nothing on it: one line with the refused connection, exit 3', async () => {
    const address = `127.0.0.1:${await closedPort()}`
    const topic = uniqueName('never')
    const [consumed, produced] = await Promise.all([runIpc(consumeFrom(address, topic)), runIpc(produceTo(address, topic))])
    for (const [command, result] of [
      ['consume', consumed],
      ['produce', produced],
    ] as const) {
      expectOneLine(
        result,
        new RegExp(
          `^ipc ${command}: no Kafka broker answered at ${address.replaceAll('.', '\\.')} \\(Connection error: ` +
            `connect ECONNREFUSED ${address.replaceAll('.', '\\.')}\\)\\n$`,
        ),
      )
    }
  })

  it('a topic the broker does not have: both stop with its name and exit 3, without creating it', async () => {
    const brokers = serviceUrls().kafkaBrokers.join(',')
    const topic = uniqueName('missing')
    const [consumed, produced] = await Promise.all([runIpc(consumeFrom(brokers, topic)), runIpc(produceTo(brokers, topic))])
    const last = (result: CliResult) => result.stderr.trim().split('\n').at(-1)
    for (const [command, result] of [
      ['consume', consumed],
      ['produce', produced],
    ] as const) {
      expect(result.code, result.stderr).to.equal(3)
      expect(last(result)).to.match(
        new RegExp(`^ipc ${command}: topic "${topic}" does not exist and the broker does not create topics automatically: create it first`),
      )
    }
    // Asked again: still missing, so neither command created it.
    expect(last(await runIpc(produceTo(brokers, topic)))).to.include(`topic "${topic}" does not exist`)
  })
})
