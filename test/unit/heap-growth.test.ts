import {expect} from 'chai'
import {heapGrowthFlag, limitHeapGrowth} from '../../src/util/heap-growth.js'

describe('heap growth (consume --heap-growing-percent)', () => {
  it("gives V8's flag for a percent above 0", () => {
    expect(heapGrowthFlag(25, undefined, [])).to.equal('--heap-growing-percent=25')
    expect(heapGrowthFlag(25, '--enable-source-maps', ['--no-warnings'])).to.equal('--heap-growing-percent=25')
  })

  it("leaves V8's own growth at 0", () => {
    expect(heapGrowthFlag(0, undefined, [])).to.equal(undefined)
  })

  it('leaves the heap alone when Node was started with heap options of its own', () => {
    expect(heapGrowthFlag(25, '--max-old-space-size=64', [])).to.equal(undefined)
    expect(heapGrowthFlag(25, '--no-warnings --heap-growing-percent=50', [])).to.equal(undefined)
    expect(heapGrowthFlag(25, undefined, ['--max-heap-size=128'])).to.equal(undefined)
    expect(heapGrowthFlag(25, undefined, ['--optimize-for-size'])).to.equal(undefined)
  })

  it('sets the flag it gives, and nothing when Node was given heap options', () => {
    const set: string[] = []
    expect(limitHeapGrowth(40, {nodeOptions: '', execArgv: [], setFlags: (each) => set.push(each)})).to.equal('--heap-growing-percent=40')
    expect(limitHeapGrowth(40, {nodeOptions: '--max-old-space-size=96', execArgv: [], setFlags: (each) => set.push(each)})).to.equal(undefined)
    expect(set).to.deep.equal(['--heap-growing-percent=40'])
  })
})
