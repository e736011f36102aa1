import type https from 'node:https'
import type {TLSSocket} from 'node:tls'
import type {ClientAuthType, WebTlsConfig} from './web-config.js'

/** What a TLS connection's client showed: a certificate at all, and whether it verified against client_ca_file. */
export interface PeerCertificate {
  presented: boolean
  authorized: boolean
}

/**
 * Node's server TLS options for a web config. Node rejects an unverified client certificate only
 * together with a missing one (`rejectUnauthorized`), so RequireAnyClientCert and
 * VerifyClientCertIfGiven ask for a certificate without rejecting, and {@link acceptsPeer} decides
 * once the handshake is done.
 */
export function tlsServerOptions(config: WebTlsConfig): https.ServerOptions {
  const requestCert = config.clientAuth !== 'NoClientCert'
  return {
    cert: config.cert,
    key: config.key,
    ca: config.clientCa,
    minVersion: config.minVersion,
    maxVersion: config.maxVersion,
    requestCert,
    rejectUnauthorized: config.clientAuth === 'RequireAndVerifyClientCert',
  }
}

/** Whether a connection may send requests under `mode`, given the client's certificate. */
export function acceptsPeer(mode: ClientAuthType, peer: PeerCertificate): boolean {
  switch (mode) {
    case 'NoClientCert':
    case 'RequestClientCert':
      return true
    case 'RequireAnyClientCert':
      return peer.presented
    case 'VerifyClientCertIfGiven':
      return !peer.presented || peer.authorized
    case 'RequireAndVerifyClientCert':
      return peer.presented && peer.authorized
  }
}

export function peerCertificateOf(socket: TLSSocket): PeerCertificate {
  const certificate = socket.getPeerCertificate()
  return {presented: certificate !== null && Object.keys(certificate).length > 0, authorized: socket.authorized}
}
