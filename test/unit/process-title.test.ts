import {expect} from 'chai'
import {spawn} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import {redactedCommandLine} from '../../src/cli/process-title.js'
import {sleep} from '../../src/util/async.js'

describe('process title', () => {
  it('hides the values of secret flags and passwords in URLs, and nothing else', () => {
    expect(
      redactedCommandLine([
        'consume',
        '--sasl-password',
        'pw1',
        '--redis-password=pw2',
        '--redis-url',
        'rediss://ipc:pw3@host:6380',
        '--clickhouse-password',
        'pw4',
        '--topic',
        'events',
      ]),
    ).to.equal('consume --sasl-password *** --redis-password=*** --redis-url rediss://ipc:***@host:6380 --clickhouse-password *** --topic events')
    expect(redactedCommandLine(['count', '--redis-url', 'redis://127.0.0.1:6379'])).to.equal('count --redis-url redis://127.0.0.1:6379')
  })

  it('ps of a running ipc shows no password given on its command line', async () => {
    const runJs = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))
    // serve runs until stopped, so its title can be read.
    const args = ['serve', '--backend', 'memory', '--port', '0', '--clickhouse-password', 'Hidden-Pw-1']
    const child = spawn(process.execPath, [runJs, ...args], {stdio: ['ignore', 'ignore', 'ignore']})
    try {
      let cmdline = ''
      for (let tries = 0; tries < 100 && !cmdline.startsWith('ipc '); tries++) {
        await sleep(50)
        cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
      }
      expect(cmdline).to.match(/^ipc serve --backend memory --port 0 --clickhouse-password \*\*\*/)
      expect(cmdline).to.not.include('Hidden-Pw-1')
    } finally {
      child.kill()
    }
  })
})
