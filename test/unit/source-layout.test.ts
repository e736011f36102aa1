import {readdirSync, readFileSync} from 'node:fs'
import {join, relative} from 'node:path'
import {expect} from 'chai'
import {IpcCommand} from '../../src/cli/base-command.js'
import {REPO_ROOT} from '../support/cli.js'

/** The structure the project keeps: small modules, and one command style. */

const MAX_LINES = 350
const SOURCES = join(REPO_ROOT, 'src')

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, {withFileTypes: true}).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return entry.name.endsWith('.ts') ? [path] : []
  })
}

describe('source layout', () => {
  it(`has no module in src/ longer than ${MAX_LINES} lines`, () => {
    const long = sourceFiles(SOURCES)
      .map((path) => ({path: relative(REPO_ROOT, path), lines: readFileSync(path, 'utf8').split('\n').length}))
      .filter(({lines}) => lines > MAX_LINES)
    expect(long).to.deep.equal([])
  })

  it('has every command extend the base command', async () => {
    const commands = readdirSync(join(SOURCES, 'commands')).filter((name) => name.endsWith('.ts'))
    expect(commands).to.not.be.empty
    for (const name of commands) {
      const module = (await import(`../../src/commands/${name.replace(/\.ts$/, '.js')}`)) as {default: unknown}
      expect((module.default as {prototype: unknown}).prototype, name).to.be.instanceOf(IpcCommand)
    }
  })
})
