import type http from 'node:http'
import type {AddressInfo} from 'node:net'
import tls from 'node:tls'
import type {WebConfig} from './web-config.js'

/** A server could not listen where asked (port in use, address not on this machine, no permission). */
export class ListenError extends Error {
  override name = 'ListenError'
  /** The message states the cause already (the port in use, the address missing). */
  readonly includesCause = true
}

/** Starts `server` listening; resolves with the bound address (port 0 picks a free port). */
export function listen(server: http.Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off('listening', onListening)
      const reason =
        error.code === 'EADDRINUSE'
          ? `port ${port} on ${host} is already in use`
          : error.code === 'EADDRNOTAVAIL'
            ? `address ${host} is not available on this machine`
            : error.code === 'EACCES'
              ? `permission denied to listen on ${host}:${port}`
              : error.message
      reject(new ListenError(`cannot listen on ${host}:${port}: ${reason}`, {cause: error}))
    }
    const onListening = (): void => {
      server.off('error', onError)
      resolve(server.address() as AddressInfo)
    }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen(port, host)
  })
}

/** `http://host:port` (`https://` with TLS) of a listening server. */
export function serverUrl(server: http.Server): string {
  const address = server.address()
  if (!address || typeof address === 'string') throw new Error('the server is not listening')
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return `${server instanceof tls.Server ? 'https' : 'http'}://${host}:${address.port}`
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.')
}

/**
 * The warning for a server bound where others can reach it without the protection of a web
 * config (no TLS, or no config at all); undefined on a loopback address or with TLS.
 */
export function exposureWarning(address: string, webConfig: WebConfig | undefined): string | undefined {
  if (isLoopback(address) || webConfig?.tls) return undefined
  if (webConfig)
    return `listening on ${address} without TLS: the web config ${webConfig.file} has no tls_server_config, so passwords and answers cross the network in clear`
  return `listening on ${address} without --web-config: no TLS and no authentication, anyone who can reach this address can read it`
}
