import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import {fileURLToPath} from 'node:url'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

function ipc(args: string[]): {status: number | null; stdout: string; stderr: string} {
  const result = spawnSync(process.execPath, ['bin/run.js', ...args], {cwd: ROOT, encoding: 'utf8', timeout: 60_000})
  if (result.error) throw result.error
  return {status: result.status, stdout: result.stdout, stderr: result.stderr}
}

describe('Kafka flags in --help', () => {
  for (const command of ['consume', 'produce', 'lag', 'serve']) {
    it(`ipc ${command} --help lists the security flags with their environment variables, and no --assign-delay`, () => {
      const help = ipc([command, '--help'])
      expect(help.status).to.equal(0)
      for (const flag of [
        '--kafka-config',
        '--security-protocol',
        '--sasl-mechanism',
        '--sasl-username',
        '--sasl-password-file',
        '--ssl-ca',
        '--ssl-cert',
        '--ssl-key',
        '--ssl-no-verify',
      ]) {
        expect(help.stdout, flag).to.include(flag)
      }
      expect(help.stdout).to.include('KAFKA_SASL_PASSWORD_FILE')
      expect(help.stdout).to.not.include('assign-delay')
    })
  }

  it('--assign-delay is refused as an unknown flag (exit 2)', () => {
    const result = ipc(['consume', '--topic', 't', '--assign-delay', '250'])
    expect(result.status).to.equal(2)
    expect(result.stderr).to.match(/Nonexistent flag: --assign-delay/)
  })
})
