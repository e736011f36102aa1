import {execFileSync} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

/** The files of a throw-away CA made by {@link makeThrowawayCa}: PEM paths. */
export interface ThrowawayCa {
  caFile: string
  /** For 127.0.0.1 and localhost (subjectAltName), signed by the CA. */
  serverCert: string
  serverKey: string
  /** A client certificate signed by the CA. */
  clientCert: string
  clientKey: string
  /** A client certificate signed by another CA, which the first does not vouch for. */
  strangerCert: string
  strangerKey: string
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, {cwd: dir, stdio: ['ignore', 'ignore', 'pipe']})
}

/** Signs a new P-256 key's certificate for `subject` with the CA `ca` (`ca.pem`, `ca.key`) in `dir`. */
function signed(dir: string, name: string, subject: string, ca: string, extensions?: string): void {
  openssl(dir, 'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject)
  const extensionArgs = extensions ? ['-extfile', `${name}.ext`] : []
  if (extensions) writeFileSync(join(dir, `${name}.ext`), `${extensions}\n`)
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '1',
    ...extensionArgs,
  )
}

/** A CA, a server certificate for 127.0.0.1, and client certificates, made with the openssl CLI in `dir`. */
export function makeThrowawayCa(dir: string): ThrowawayCa {
  const ca = (name: string, subject: string) =>
    openssl(
      dir,
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
      '-days',
      '1',
      '-subj',
      subject,
    )
  ca('ca', '/CN=ipc test CA')
  ca('other-ca', '/CN=another CA')
  signed(dir, 'server', '/CN=localhost', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost')
  signed(dir, 'client', '/CN=prometheus', 'ca')
  signed(dir, 'stranger', '/CN=stranger', 'other-ca')
  const path = (name: string) => join(dir, name)
  return {
    caFile: path('ca.pem'),
    serverCert: path('server.pem'),
    serverKey: path('server.key'),
    clientCert: path('client.pem'),
    clientKey: path('client.key'),
    strangerCert: path('stranger.pem'),
    strangerKey: path('stranger.key'),
  }
}
