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
