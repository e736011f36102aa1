import {expect} from 'chai'
import {positionalValues} from '../../src/cli/argv.js'

describe('positionalValues', () => {
  it('keeps order and repeats, and drops the boolean flags before --', () => {
    expect(positionalValues(['1', '--json', '2', '1', '-5'], ['--json'])).to.deep.equal(['1', '2', '1', '-5'])
  })

  it('keeps every token after the first --, flags and further -- included', () => {
    expect(positionalValues(['a', '--', '--json', '--', 'a'], ['--json'])).to.deep.equal(['a', '--json', '--', 'a'])
  })

  it('gives nothing for no tokens or only flags', () => {
    expect(positionalValues([], ['--json'])).to.deep.equal([])
    expect(positionalValues(['--json', '--'], ['--json'])).to.deep.equal([])
  })
})
