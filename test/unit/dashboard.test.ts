import {expect} from 'chai'
import {MemoryBackend} from '../../src/backends/memory.js'
import {type CountServer, createCountServer} from '../../src/http/count-server.js'
import {DashboardOptionError, dashboardFiles, parseDashboardErrorCodes} from '../../src/http/dashboard.js'

describe('dashboard: --dashboard-error-codes', () => {
  it('reads lists and ranges, negative codes included, sorted and without repeats', () => {
    expect(parseDashboardErrorCodes('0..3')).to.deep.equal([0, 1, 2, 3])
    expect(parseDashboardErrorCodes('7, 1,4,1')).to.deep.equal([1, 4, 7])
    expect(parseDashboardErrorCodes('-3..-1,100..101,0')).to.deep.equal([-3, -2, -1, 0, 100, 101])
  })

  for (const [text, message] of [
    ['', /names no error code/],
    ['5..2', /first code is greater than the last/],
    ['200', /200/],
    ['a', /"a"/],
    ['-128..127', /at most 32/],
  ] as const) {
    it(`refuses "${text}" with a message that says why`, () => {
      expect(() => parseDashboardErrorCodes(text)).to.throw(DashboardOptionError, message)
    })
  }
})

describe('dashboard: the page served by ipc serve', () => {
  let server: CountServer | undefined

  afterEach(async () => {
    await server?.close()
    server = undefined
  })

  async function start(withDashboard: boolean): Promise<CountServer> {
    const backend = new MemoryBackend()
    await backend.add([{timestampMs: 0, deviceIp: '10.0.0.1', errorCode: 0}])
    server = await createCountServer({
      createBackend: async () => backend,
      cacheMs: 0,
      dashboard: withDashboard ? {errorCodes: [-1, 3], refreshMs: 2000} : undefined,
    })
    await server.listen(0, '127.0.0.1')
    return server
  }

  it('carries its settings into the page and keeps the script and style in files of their own', () => {
    const files = dashboardFiles({errorCodes: [0, 5], refreshMs: 1500})
    const page = files.get('/')!.body
    expect(page).to.contain('data-error-codes="0,5"').and.contain('data-refresh-ms="1500"')
    expect(page).not.to.match(/<script>[^<]/)
    expect(page).to.contain('src="/dashboard.js"').and.contain('href="/dashboard.css"')
    expect(files.get('/dashboard.js')!.body).to.contain('/unique_ip_count')
  })

  it('serves GET / as HTML that may load nothing from elsewhere, and its script and style', async () => {
    const {url} = await start(true)
    const page = await fetch(`${url}/`)
    expect(page.status).to.equal(200)
    expect(page.headers.get('content-type')).to.equal('text/html; charset=utf-8')
    expect(page.headers.get('content-security-policy')).to.contain("default-src 'none'").and.contain("script-src 'self'")
    expect(await page.text()).to.contain('data-error-codes="-1,3"')
    const script = await fetch(`${url}/dashboard.js`)
    expect(script.headers.get('content-type')).to.equal('text/javascript; charset=utf-8')
    const style = await fetch(`${url}/dashboard.css`)
    expect(style.headers.get('content-type')).to.equal('text/css; charset=utf-8')
    const view = await fetch(`${url}/pipeline-view.js`)
    expect(view.headers.get('content-type')).to.equal('text/javascript; charset=utf-8')
    expect(await view.text()).to.contain('export function lagView')
    expect((await fetch(`${url}/unique_ip_count`)).status).to.equal(200)
  })

  it('without the dashboard answers / with 404 and the JSON API as before', async () => {
    const {url} = await start(false)
    const page = await fetch(`${url}/`)
    expect(page.status).to.equal(404)
    expect(await page.json()).to.deep.equal({error: 'no such path: /', paths: ['/unique_ip_count', '/pipeline', '/healthz', '/metrics']})
    expect((await fetch(`${url}/dashboard.js`)).status).to.equal(404)
    const count = await fetch(`${url}/unique_ip_count`)
    expect(await count.text()).to.equal('{"unique_device_ip_count":1}\n')
  })
})
