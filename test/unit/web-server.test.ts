import {expect} from 'chai'
import {once} from 'node:events'
import type http from 'node:http'
import net from 'node:net'
import {listen} from '../../src/http/listen.js'
import {MAX_BODY_BYTES} from '../../src/http/web-limits.js'
import {createWebServer} from '../../src/http/web-server.js'

/** Sends `text` on a new connection and resolves with everything the server sent until it closed, or until `idleMs` of silence. */
function exchange(port: number, text: string, idleMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1')
    let received = ''
    socket.setEncoding('utf8')
    socket.setTimeout(idleMs, () => {
      socket.destroy()
      resolve(received)
    })
    socket.on('data', (chunk: string) => (received += chunk))
    socket.on('end', () => resolve(received))
    socket.on('error', reject)
    socket.write(text)
  })
}

const statusOf = (answer: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1])

describe('the web server factory: limits before every route', () => {
  let server: http.Server
  let port: number
  const observed: string[] = []
  const held: Array<() => void> = []

  before(async () => {
    server = createWebServer(
      (request, response) => {
        const answer = () => response.end('ok\n')
        if (request.url === '/hold') held.push(answer)
        else answer()
      },
      {limits: {headersTimeoutMs: 400, requestTimeoutMs: 800, maxRequests: 2}, observe: (request) => observed.push(request.url ?? '')},
    )
    port = (await listen(server, 0, '127.0.0.1')).port
  })

  after(() => {
    server.closeAllConnections()
    server.close()
  })

  it('answers 503 with Retry-After past --http-max-requests in flight, and takes requests again once they end', async () => {
    const sockets = [net.connect(port, '127.0.0.1'), net.connect(port, '127.0.0.1')]
    for (const socket of sockets) socket.write('GET /hold HTTP/1.1\r\nHost: x\r\n\r\n')
    const deadline = Date.now() + 2000
    while (held.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    expect(held).to.have.length(2)
    const refused = await exchange(port, 'GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    expect(statusOf(refused)).to.equal(503)
    expect(refused).to.match(/\r\nRetry-After: 1\r\n/)
    expect(refused).to.include('{"error":"more than 2 requests in flight; retry later"}')
    for (const release of held.splice(0)) release()
    for (const socket of sockets) socket.destroy()
    await Promise.all(sockets.map((socket) => once(socket, 'close')))
    expect(statusOf(await exchange(port, 'GET /fast HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))).to.equal(200)
    expect(observed).to.include('/fast')
  })

  it(`answers 413 for a body over ${MAX_BODY_BYTES} bytes, declared or chunked, and closes the connection`, async () => {
    const declared = await exchange(port, `GET /fast HTTP/1.1\r\nHost: x\r\nContent-Length: ${MAX_BODY_BYTES + 1}\r\n\r\n`)
    expect(statusOf(declared)).to.equal(413)
    expect(declared).to.match(/\r\nConnection: close\r\n/)
    const chunk = 'x'.repeat(MAX_BODY_BYTES + 1)
    const chunked = await exchange(port, `GET /fast HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n`)
    expect(statusOf(chunked)).to.equal(413)
    const small = await exchange(port, 'GET /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello')
    expect(statusOf(small)).to.equal(200)
  })

  it('answers 431 for headers over 16 KiB', async () => {
    const answer = await exchange(port, `GET /fast HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`)
    expect(statusOf(answer)).to.equal(431)
  })

  it('closes a connection that sends nothing within --http-headers-timeout', async () => {
    const started = Date.now()
    expect(await exchange(port, '', 5000)).to.equal('')
    expect(Date.now() - started).to.be.within(350, 1500)
  })

  it('answers 408 and closes a request whose body does not arrive within --http-request-timeout', async () => {
    const started = Date.now()
    const answer = await exchange(port, 'GET /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc')
    expect(statusOf(answer)).to.equal(408)
    expect(Date.now() - started).to.be.within(700, 2000)
  })
})
