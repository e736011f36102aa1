import {createClient} from '@clickhouse/client'
import {expect} from 'chai'
import net from 'node:net'
import type {DeviceEvent} from '../../src/backends/backend.js'
import {ClickHouseBackend} from '../../src/backends/clickhouse/clickhouse-backend.js'
import {RedisBackend} from '../../src/backends/redis/redis-backend.js'
import type {BackendOptions} from '../../src/backends/registry.js'
import {runIpc} from '../support/cli.js'
import {uniqueName} from '../support/services.js'

function serviceUrl(name: 'REDIS_URL' | 'CLICKHOUSE_URL'): string {
  const url = process.env[name]
  if (!url) throw new Error(`${name} is not set: run through mocha with .mocharc.json, or set it to a test service`)
  return url
}

function events(count: number, repeat = 1): DeviceEvent[] {
  const list: DeviceEvent[] = []
  for (let round = 0; round < repeat; round++) {
    for (let n = 0; n < count; n++) list.push({timestampMs: 1_638_548_130_123 + n, deviceIp: `172.16.${n >> 8}.${n & 255}`, errorCode: 1})
  }
  return list
}

function options(overrides: Partial<BackendOptions>): BackendOptions {
  return {
    redisUrl: serviceUrl('REDIS_URL'),
    redisKey: 'unused',
    clickhouseUrl: serviceUrl('CLICKHOUSE_URL'),
    clickhouseUser: 'default',
    clickhousePassword: '',
    clickhouseDatabase: 'unused',
    ...overrides,
  }
}

/** Flags only: no backend setting leaks in from the environment the tests run in. */
const CLEAN_ENV = {IPC_BACKEND: undefined, IPC_REDIS_KEY: undefined, CLICKHOUSE_DATABASE: undefined, CLICKHOUSE_USER: undefined, CLICKHOUSE_PASSWORD: undefined}

async function closedPort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Accepts connections and never answers: a hung backend. */
async function silentServer(): Promise<{port: number; close: () => Promise<void>}> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

describe('ipc count', () => {
  describe('with redis', () => {
    const key = uniqueName('ipc_test_count')

    before(async () => {
      const redis = new RedisBackend(options({redisKey: key}))
      await redis.connect()
      await redis.add(events(300, 2))
      await redis.close()
    })

    after(async () => {
      const {createClient: createRedisClient} = await import('@redis/client')
      const client = createRedisClient({url: serviceUrl('REDIS_URL')})
      await client.connect()
      await client.del(key)
      await client.close()
    })

    it('prints only the stored estimate and a newline', async () => {
      const redis = new RedisBackend(options({redisKey: key}))
      const stored = await redis.count()
      await redis.close()
      const result = await runIpc(['count', '--backend', 'redis', '--redis-url', serviceUrl('REDIS_URL'), '--redis-key', key], {env: CLEAN_ENV})
      expect(result.stderr).to.equal('')
      expect(result.code).to.equal(0)
      expect(result.stdout).to.equal(`${stored}\n`)
      expect(stored).to.be.within(294, 306)
    })

    it('prints JSON with --json', async () => {
      const result = await runIpc(['count', '--backend', 'redis', '--redis-url', serviceUrl('REDIS_URL'), '--redis-key', key, '--json'], {env: CLEAN_ENV})
      expect(result.code).to.equal(0)
      const parsed = JSON.parse(result.stdout) as Record<string, unknown>
      expect(Object.keys(parsed).sort()).to.deep.equal(['backend', 'exact', 'unique_device_ip_count'])
      expect(parsed).to.include({backend: 'redis', exact: false})
      expect(parsed.unique_device_ip_count).to.be.a('number').within(294, 306)
    })
  })

  describe('with clickhouse', () => {
    const database = uniqueName('ipc_test_count')

    before(async () => {
      const clickhouse = new ClickHouseBackend(options({clickhouseDatabase: database}))
      await clickhouse.connect()
      await clickhouse.add(events(37, 3))
      await clickhouse.close()
    })

    after(async () => {
      const admin = createClient({url: serviceUrl('CLICKHOUSE_URL')})
      await admin.command({query: `DROP DATABASE IF EXISTS \`${database}\``})
      await admin.close()
    })

    const args = () => ['count', '--backend', 'clickhouse', '--clickhouse-url', serviceUrl('CLICKHOUSE_URL'), '--clickhouse-database', database]

    it('prints the exact distinct count and a newline', async () => {
      const result = await runIpc(args(), {env: CLEAN_ENV})
      expect(result).to.include({code: 0, stdout: '37\n', stderr: ''})
    })

    it('prints JSON with --json', async () => {
      const result = await runIpc([...args(), '--json'], {env: CLEAN_ENV})
      expect(result.code).to.equal(0)
      expect(JSON.parse(result.stdout)).to.deep.equal({unique_device_ip_count: 37, backend: 'clickhouse', exact: true})
    })

    it('counts with a read-only user (readonly profile), using the tables as they are', async () => {
      const reader = [...args(), '--clickhouse-user', 'ipc_reader']
      expect(await runIpc(reader, {env: CLEAN_ENV})).to.include({code: 0, stdout: '37\n', stderr: ''})
      const range = await runIpc([...reader, '--since', '2000-01-01T00:00:00Z', '--json'], {env: CLEAN_ENV})
      expect(range.code, range.stderr).to.equal(0)
      expect(JSON.parse(range.stdout)).to.include({unique_device_ip_count: 37})
    })

    it('with a read-only user and no table yet: exits 3 saying the table is missing and may not be created', async () => {
      const missing = uniqueName('ipc_test_missing')
      const result = await runIpc(
        [
          'count',
          '--backend',
          'clickhouse',
          '--clickhouse-url',
          serviceUrl('CLICKHOUSE_URL'),
          '--clickhouse-database',
          missing,
          '--clickhouse-user',
          'ipc_reader',
        ],
        {env: CLEAN_ENV},
      )
      expect(result.code).to.equal(3)
      expect(result.stdout).to.equal('')
      expect(result.stderr).to.include(`table ${missing}.events does not exist, and user "ipc_reader" may not create it`).and.include('readonly')
    })

    it('refuses an invalid database name with exit code 2', async () => {
      const result = await runIpc(['count', '--backend', 'clickhouse', '--clickhouse-url', serviceUrl('CLICKHOUSE_URL'), '--clickhouse-database', 'x; DROP'], {
        env: CLEAN_ENV,
      })
      expect(result.code).to.equal(2)
      expect(result.stdout).to.equal('')
      expect(result.stderr).to.include('invalid ClickHouse database name')
    })
  })

  it('prints 0 with the memory backend: a fresh process has counted nothing', async () => {
    const result = await runIpc(['count', '--backend', 'memory'], {env: CLEAN_ENV})
    expect(result).to.include({code: 0, stdout: '0\n', stderr: ''})
  })

  describe('when the backend is down', () => {
    for (const backend of ['redis', 'clickhouse'] as const) {
      it(`${backend}: exits 3 with one line on stderr naming the URL without the password, and nothing on stdout`, async () => {
        const port = await closedPort()
        const url = backend === 'redis' ? `redis://user:secret@127.0.0.1:${port}` : `http://default:secret@127.0.0.1:${port}`
        for (const extra of [[], ['--json']]) {
          const result = await runIpc(['count', '--backend', backend, `--${backend}-url`, url, ...extra], {env: CLEAN_ENV, timeoutMs: 30_000})
          expect(result.code, result.stderr).to.equal(3)
          expect(result.stdout).to.equal('')
          const lines = result.stderr.trimEnd().split('\n')
          expect(lines, result.stderr).to.have.length(1)
          expect(lines[0]).to.include(`127.0.0.1:${port}`).and.not.include('secret')
        }
      })

      it(`${backend}: gives up with exit code 3 when the backend accepts connections but never answers`, async () => {
        const hung = await silentServer()
        try {
          const url = backend === 'redis' ? `redis://127.0.0.1:${hung.port}` : `http://127.0.0.1:${hung.port}`
          const result = await runIpc(['count', '--backend', backend, `--${backend}-url`, url, '--timeout', '1s'], {env: CLEAN_ENV, timeoutMs: 30_000})
          expect(result.code).to.equal(3)
          expect(result.stdout).to.equal('')
          expect(result.stderr).to.match(new RegExp(`^ipc count: .*127\\.0\\.0\\.1:${hung.port}.*\\n$`))
        } finally {
          await hung.close()
        }
      })
    }
  })

  it('documents its exit codes and a shell example in --help', async () => {
    const result = await runIpc(['count', '--help'], {env: CLEAN_ENV})
    expect(result.code).to.equal(0)
    expect(result.stdout).to.include('Exit codes').and.include('3 = the backend is unreachable').and.include('n=$(ipc count')
  })
})
