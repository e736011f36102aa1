import {expect} from 'chai'
import {SingleFlightCache} from '../../src/http/single-flight-cache.js'

interface Answer {
  ok: boolean
  completedAt: number
  value: number
}

describe('SingleFlightCache', () => {
  let now = 0
  const cache = (maxEntries = 10) => new SingleFlightCache<Answer>({cacheMs: 1000, errorCacheMs: 100, maxEntries, now: () => now})
  beforeEach(() => (now = 0))

  it('shares one query among concurrent callers of a key, then serves it from the cache until it is stale', async () => {
    const answers = cache()
    let loads = 0
    const load = async () => ({ok: true, completedAt: now, value: ++loads})
    const [a, b] = await Promise.all([answers.get('k', load), answers.get('k', load)])
    expect([a.source, b.source]).to.deep.equal(['backend', 'shared'])
    expect([a.value.value, b.value.value]).to.deep.equal([1, 1])
    now = 999
    expect(await answers.get('k', load)).to.deep.include({source: 'cache'})
    now = 1000
    const fresh = await answers.get('k', load)
    expect(fresh.source).to.equal('backend')
    expect(fresh.value.value).to.equal(2)
  })

  it('keeps failures for the shorter error time, and keys apart', async () => {
    const answers = cache()
    let loads = 0
    const failing = async () => ({ok: false, completedAt: now, value: ++loads})
    await answers.get('a', failing)
    now = 99
    expect((await answers.get('a', failing)).source).to.equal('cache')
    expect((await answers.get('b', failing)).source, 'another key').to.equal('backend')
    now = 100
    expect((await answers.get('a', failing)).source).to.equal('backend')
  })

  it('forgets the oldest answer beyond maxEntries', async () => {
    const answers = cache(2)
    const load = async () => ({ok: true, completedAt: now, value: 1})
    for (const key of ['a', 'b', 'c']) await answers.get(key, load)
    expect(answers.last('a')).to.equal(undefined)
    expect(answers.last('c')).to.deep.include({value: 1})
  })

  it('tells where an answer comes from as soon as it is asked, before a shared query completes', async () => {
    const answers = cache()
    const sources: string[] = []
    answers.on('answered', (source) => sources.push(source))
    let release!: () => void
    const slow = () => new Promise<Answer>((resolve) => (release = () => resolve({ok: true, completedAt: now, value: 1})))
    const first = answers.get('k', slow)
    const second = answers.get('k', slow)
    expect(sources).to.deep.equal(['backend', 'shared'])
    release()
    await Promise.all([first, second])
    await answers.get('k', slow)
    expect(sources).to.deep.equal(['backend', 'shared', 'cache'])
  })
})
