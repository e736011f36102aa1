import {expect} from 'chai'
import bcrypt from 'bcryptjs'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {exitCodeFor} from '../../src/cli/exit-codes.js'
import {webServerOptionsFromFlags} from '../../src/cli/web-flags.js'
import {exposureWarning} from '../../src/http/listen.js'
import {basicCredentials, BasicAuth, WWW_AUTHENTICATE} from '../../src/http/web-auth.js'
import {loadWebConfig, parseWebConfig, WebConfigError, type WebConfig} from '../../src/http/web-config.js'
import {checkHttpLimits, DEFAULT_HTTP_LIMITS} from '../../src/http/web-limits.js'
import {acceptsPeer, tlsServerOptions} from '../../src/http/web-tls.js'

const HASH = bcrypt.hashSync('s3cret', 4)
const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

function refusal(text: string): string {
  try {
    parseWebConfig(text, '/etc/ipc/web.yml')
  } catch (error) {
    expect(error).to.be.instanceOf(WebConfigError)
    return (error as Error).message
  }
  throw new Error(`accepted: ${text}`)
}

describe('web config (the exporter-toolkit format)', () => {
  it('reads basic_auth_users with $2b$ and $2y$ (htpasswd) hashes; an empty file means no TLS and no users', () => {
    const y = HASH.replace(/^\$2b\$/, '$2y$')
    const config = parseWebConfig(`basic_auth_users:\n  alice: ${HASH}\n  bob: '${y}'\n`, '/etc/ipc/web.yml')
    expect(config.tls).to.equal(undefined)
    expect([...config.users]).to.deep.equal([
      ['alice', HASH],
      ['bob', y],
    ])
    expect(parseWebConfig('', '/x.yml').users.size).to.equal(0)
    expect(parseWebConfig('http_server_config:\n  http2: false\n', '/x.yml').users.size).to.equal(0)
  })

  it('refuses a hash that is not bcrypt, without quoting it', () => {
    for (const hash of ['s3cret', '{SHA}e0Hb5nHHXTBuGG8TqOdlbWz2Nn8=', '$1$abcdefgh$0123456789abcdefghijkl', HASH.slice(0, -1)]) {
      const message = refusal(`basic_auth_users:\n  alice: '${hash}'\n`)
      expect(message).to.equal('basic_auth_users.alice is not a bcrypt hash (make one with htpasswd -nBC 10 "")')
    }
  })

  it('refuses bad YAML with its line and column and no quote of the file', () => {
    const message = refusal(`basic_auth_users:\n  alice: ${HASH}\n  alice: ${HASH}\n`)
    expect(message).to.match(/^not valid YAML: Map keys must be unique at line 3, column 3$/)
    expect(refusal('basic_auth_users: [\n')).to.match(/^not valid YAML: .* at line \d+, column \d+$/)
    expect(refusal('- a\n- b\n')).to.equal('the file must be a YAML mapping')
  })

  it('refuses unknown keys, and says which exporter-toolkit keys ipc does not implement', () => {
    expect(refusal('tls_config:\n  cert_file: a\n')).to.equal('unknown key tls_config')
    expect(refusal('tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n')).to.equal(
      'tls_server_config.cipher_suites is not supported by ipc',
    )
    expect(refusal('http_server_config:\n  headers:\n    X-Frame-Options: deny\n')).to.equal('http_server_config.headers is not supported by ipc')
    expect(refusal('http_server_config:\n  http2: maybe\n')).to.equal('http_server_config.http2 must be true or false')
  })

  it('checks tls_server_config before reading any file', () => {
    expect(refusal('tls_server_config:\n  key_file: b\n')).to.equal('tls_server_config needs cert_file')
    expect(refusal('tls_server_config:\n  cert_file: a\n')).to.equal('tls_server_config needs key_file')
    expect(refusal('tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireClientCert\n')).to.equal(
      'tls_server_config.client_auth_type "RequireClientCert" is not one of NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert',
    )
    expect(refusal('tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n')).to.equal(
      'tls_server_config.client_auth_type RequireAndVerifyClientCert needs client_ca_file',
    )
    expect(refusal('tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: ca.pem\n')).to.equal(
      'tls_server_config.client_ca_file is given but client_auth_type is NoClientCert',
    )
    expect(refusal('tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14\n')).to.equal(
      'tls_server_config.min_version "TLS14" is not one of TLS10, TLS11, TLS12, TLS13',
    )
  })

  describe('files', () => {
    let dir: string
    before(() => (dir = mkdtempSync(join(tmpdir(), 'ipc-web-config-'))))
    after(() => rmSync(dir, {recursive: true, force: true}))

    const load = (text: string): WebConfig => {
      const file = join(dir, 'web.yml')
      writeFileSync(file, text)
      return loadWebConfig(file)
    }
    const loadRefusal = (text: string): string => {
      try {
        load(text)
      } catch (error) {
        expect(error).to.be.instanceOf(WebConfigError)
        return (error as Error).message
      }
      throw new Error(`accepted: ${text}`)
    }

    it('names a missing file, and the files of tls_server_config relative to the config', () => {
      expect(() => loadWebConfig(join(dir, 'none.yml'))).to.throw(WebConfigError, `cannot read the web config ${join(dir, 'none.yml')}: ENOENT`)
      expect(loadRefusal('tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n')).to.equal(
        `web config ${join(dir, 'web.yml')}: cannot read cert_file ${join(dir, 'server.pem')}: ENOENT`,
      )
    })

    it('refuses a key that is not one, without quoting it', () => {
      writeFileSync(join(dir, 'server.pem'), '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n')
      writeFileSync(join(dir, 'server.key'), 'hunter2-not-a-key\n')
      const message = loadRefusal('tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n')
      expect(message).to.match(new RegExp(`^web config .*: cannot use cert_file ${join(dir, 'server.pem')} with key_file ${join(dir, 'server.key')}: \\S`))
      expect(message).to.not.include('hunter2')
      expect(loadRefusal('tls_server_config:\n  cert_file: server.pem\n  key_file: .\n')).to.match(/cannot read key_file .*: EISDIR$/)
    })

    it('is a usage error (exit 2), as are contradicting limits', async () => {
      expect(exitCodeFor(new WebConfigError('x'))).to.equal(2)
      const flags = {'http-headers-timeout': 10_000, 'http-request-timeout': 30_000, 'http-max-requests': 64}
      let error: unknown
      await webServerOptionsFromFlags({...flags, 'web-config': join(dir, 'none.yml')}).catch((caught: unknown) => (error = caught))
      expect(exitCodeFor(error)).to.equal(2)
      expect(() => checkHttpLimits({...DEFAULT_HTTP_LIMITS, requestTimeoutMs: 5000})).to.throw('--http-request-timeout must be at least --http-headers-timeout')
      expect(exitCodeFor(await webServerOptionsFromFlags({...flags, 'http-headers-timeout': 0}).catch((caught: unknown) => caught))).to.equal(2)
      expect(await webServerOptionsFromFlags(flags)).to.deep.equal({limits: DEFAULT_HTTP_LIMITS})
    })
  })
})

describe('basic auth', () => {
  it('reads a Basic header: the user up to the first colon, the rest the password', () => {
    expect(basicCredentials(basic('alice', 'a:b c'))).to.deep.equal({user: 'alice', password: 'a:b c'})
    expect(basicCredentials(`basic ${Buffer.from('alice:').toString('base64')}`)).to.deep.equal({user: 'alice', password: ''})
    for (const header of [undefined, '', 'Bearer abc', 'Basic', 'Basic !!!', `Basic ${Buffer.from('no-colon').toString('base64')}`]) {
      expect(basicCredentials(header), String(header)).to.equal(undefined)
    }
    expect(WWW_AUTHENTICATE).to.equal('Basic realm="ipc", charset="UTF-8"')
  })

  it('refuses an unknown user after the same bcrypt comparison as a known one, even with another user’s password', async () => {
    const compared: string[] = []
    const auth = new BasicAuth(new Map([['alice', HASH]]), async (password, hash) => {
      compared.push(hash)
      return bcrypt.compare(password, hash)
    })
    expect(await auth.allows(basic('mallory', 's3cret'))).to.equal(false)
    expect(await auth.allows(basic('alice', 'wrong'))).to.equal(false)
    expect(compared).to.deep.equal([HASH, HASH])
    expect(await auth.allows(undefined)).to.equal(false)
    expect(compared).to.have.length(2)
  })

  it('pays bcrypt once for the right credentials, never remembers wrong ones', async () => {
    let comparisons = 0
    const auth = new BasicAuth(new Map([['alice', HASH]]), async (password, hash) => {
      comparisons += 1
      return bcrypt.compare(password, hash)
    })
    for (let i = 0; i < 3; i++) expect(await auth.allows(basic('alice', 's3cret'))).to.equal(true)
    expect(comparisons).to.equal(1)
    for (let i = 0; i < 2; i++) expect(await auth.allows(basic('alice', 's3cret!'))).to.equal(false)
    expect(comparisons).to.equal(3)
  })

  it('makes concurrent requests with the same credentials wait for one comparison', async () => {
    let comparisons = 0
    const auth = new BasicAuth(new Map([['alice', HASH]]), async (password, hash) => {
      comparisons += 1
      return bcrypt.compare(password, hash)
    })
    const headers = [...Array<string>(8).fill(basic('alice', 's3cret')), ...Array<string>(4).fill(basic('alice', 'nope'))]
    const answers = await Promise.all(headers.map((header) => auth.allows(header)))
    expect(answers).to.deep.equal([...Array<boolean>(8).fill(true), ...Array<boolean>(4).fill(false)])
    expect(comparisons).to.equal(2)
  })
})

describe('client certificates and TLS options', () => {
  it('maps client_auth_type to what Node asks and decides per connection', () => {
    const peers = [
      {presented: false, authorized: false},
      {presented: true, authorized: false},
      {presented: true, authorized: true},
    ]
    const decisions = {
      NoClientCert: [true, true, true],
      RequestClientCert: [true, true, true],
      RequireAnyClientCert: [false, true, true],
      VerifyClientCertIfGiven: [true, false, true],
      RequireAndVerifyClientCert: [false, false, true],
    } as const
    for (const [mode, expected] of Object.entries(decisions)) {
      expect(
        peers.map((peer) => acceptsPeer(mode as keyof typeof decisions, peer)),
        mode,
      ).to.deep.equal(expected)
      const options = tlsServerOptions({
        cert: Buffer.from('c'),
        key: Buffer.from('k'),
        clientAuth: mode as keyof typeof decisions,
        minVersion: 'TLSv1.2',
        maxVersion: 'TLSv1.3',
      })
      expect(options.requestCert, mode).to.equal(mode !== 'NoClientCert')
      expect(options.rejectUnauthorized, mode).to.equal(mode === 'RequireAndVerifyClientCert')
    }
  })
})

describe('the warning for a server others can reach', () => {
  const config: WebConfig = {file: '/etc/ipc/web.yml', users: new Map()}
  it('is silent on loopback and with TLS, and says what is missing otherwise', () => {
    for (const address of ['127.0.0.1', '127.0.1.1', '::1', '::ffff:127.0.0.1']) expect(exposureWarning(address, undefined), address).to.equal(undefined)
    expect(exposureWarning('0.0.0.0', {...config, tls: {} as WebConfig['tls']})).to.equal(undefined)
    expect(exposureWarning('0.0.0.0', undefined)).to.equal(
      'listening on 0.0.0.0 without --web-config: no TLS and no authentication, anyone who can reach this address can read it',
    )
    expect(exposureWarning('10.1.2.3', config)).to.match(/^listening on 10\.1\.2\.3 without TLS: the web config \/etc\/ipc\/web\.yml has no tls_server_config/)
  })
})
