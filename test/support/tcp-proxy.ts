import net from 'node:net'

/** A port on 127.0.0.1 that nothing listens on. */
export async function closedPort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * A TCP relay in front of a real service whose link can be cut: while down, open connections are
 * dropped and new ones closed at once — what a client sees when the service goes away. Tests point
 * a client at `port` (or `urlFor(serviceUrl)`) instead of stopping a service other tests share.
 */
export class CuttableLink {
  private readonly server = net.createServer((client) => this.accept(client))
  private readonly sockets = new Set<net.Socket>()
  private down = false
  port = 0

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** A relay in front of the host and port of a service URL (`redis://…`, `http://…`). */
  static forUrl(serviceUrl: string, defaultPort: number): CuttableLink {
    const target = new URL(serviceUrl)
    return new CuttableLink(target.hostname, Number(target.port || defaultPort))
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.port = (this.server.address() as net.AddressInfo).port
    return this
  }

  /** `serviceUrl` with its port replaced by the relay's. */
  urlFor(serviceUrl: string): string {
    const url = new URL(serviceUrl)
    url.port = String(this.port)
    return url.toString()
  }

  get isCut(): boolean {
    return this.down
  }

  cut(): void {
    this.down = true
    for (const socket of this.sockets) socket.destroy()
  }

  restore(): void {
    this.down = false
  }

  async stop(): Promise<void> {
    this.cut()
    await new Promise((resolve) => this.server.close(resolve))
  }

  private accept(client: net.Socket): void {
    if (this.down) {
      client.destroy()
      return
    }
    const upstream = net.connect(this.targetPort, this.targetHost)
    for (const socket of [client, upstream]) {
      this.sockets.add(socket)
      socket.on('error', () => {})
      socket.on('close', () => {
        this.sockets.delete(socket)
        client.destroy()
        upstream.destroy()
      })
    }
    client.pipe(upstream).pipe(client)
  }
}

/**
 * A TCP relay in front of an HTTP service that holds back the response to the first request whose
 * bytes contain `marker` (e.g. `query=INSERT`) for `delayMs`: the request reaches the server at once
 * and is carried out, but the client hears nothing until after its own timeout — an insert that
 * timed out on the client after the server applied it. Every other request passes untouched.
 */
export class ResponseDelayingLink {
  private readonly server = net.createServer((client) => this.accept(client))
  private readonly sockets = new Set<net.Socket>()
  /** Responses held back so far (at most one). */
  delayed = 0
  port = 0

  constructor(
    private readonly target: URL,
    private readonly marker: string,
    private readonly delayMs: number,
  ) {}

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.port = (this.server.address() as net.AddressInfo).port
    return this
  }

  /** The target URL with its port replaced by the relay's. */
  get url(): string {
    const url = new URL(this.target)
    url.port = String(this.port)
    return url.toString()
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    await new Promise((resolve) => this.server.close(resolve))
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(Number(this.target.port), this.target.hostname)
    let holding = false
    for (const socket of [client, upstream]) {
      this.sockets.add(socket)
      socket.on('error', () => {})
      socket.on('close', () => this.sockets.delete(socket))
    }
    client.on('data', (chunk: Buffer) => {
      if (this.delayed === 0 && chunk.includes(this.marker)) {
        this.delayed++
        holding = true
        // The response goes nowhere: by then the client has given up on this connection.
        setTimeout(() => {
          client.destroy()
          upstream.destroy()
        }, this.delayMs).unref()
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (!holding) client.write(chunk)
    })
    // The server finishes the held request even when the client has gone: only the delay ends it.
    client.on('close', () => holding || upstream.destroy())
    upstream.on('close', () => holding || client.destroy())
  }
}
