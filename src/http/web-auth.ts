import {createHash} from 'node:crypto'
import bcrypt from 'bcryptjs'

/** The challenge of a 401: the same for an unknown user, a wrong password and no credentials. */
export const WWW_AUTHENTICATE = 'Basic realm="ipc", charset="UTF-8"'
/** Verified credentials kept; past this many the memory starts over (only real users' credentials can enter it). */
const MAX_VERIFIED = 1024

export interface Credentials {
  user: string
  password: string
}

/** The user and password of an `Authorization: Basic …` header; undefined for anything else. */
export function basicCredentials(header: string | undefined): Credentials | undefined {
  const match = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header ?? '')
  if (!match) return undefined
  const decoded = Buffer.from(match[1], 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon < 0 ? undefined : {user: decoded.slice(0, colon), password: decoded.slice(colon + 1)}
}

export type PasswordCheck = (password: string, hash: string) => Promise<boolean>

/**
 * Basic auth against bcrypt hashes (the basic_auth_users of a web config). An unknown user costs
 * the same bcrypt comparison as a known one (against another user's hash, and refused whatever
 * it gives), so the answer and its time do not tell whether a user exists. A successful check is
 * remembered by a SHA-256 of user, hash and password, as exporter-toolkit does, so a scraper
 * pays bcrypt's cost once rather than on every request, and a page's burst of requests with the
 * same credentials waits for one comparison.
 */
export class BasicAuth {
  private readonly verified = new Set<string>()
  /** Checks under way: concurrent requests with the same credentials wait for one bcrypt comparison. */
  private readonly pending = new Map<string, Promise<boolean>>()
  private readonly decoyHash: string

  constructor(
    private readonly users: ReadonlyMap<string, string>,
    private readonly check: PasswordCheck = (password, hash) => bcrypt.compare(password, hash),
  ) {
    const [first] = users.values()
    if (first === undefined) throw new RangeError('BasicAuth needs at least one user')
    this.decoyHash = first
  }

  /** Whether the `Authorization` header names a user and that user's password. */
  async allows(header: string | undefined): Promise<boolean> {
    const credentials = basicCredentials(header)
    if (!credentials) return false
    const hash = this.users.get(credentials.user)
    const key = createHash('sha256')
      .update(`${credentials.user}\0${hash ?? ''}\0${credentials.password}`)
      .digest('base64')
    if (hash !== undefined && this.verified.has(key)) return true
    let pending = this.pending.get(key)
    if (!pending) {
      pending = this.verify(key, credentials.password, hash).finally(() => this.pending.delete(key))
      this.pending.set(key, pending)
    }
    return pending
  }

  private async verify(key: string, password: string, hash: string | undefined): Promise<boolean> {
    const matches = await this.check(password, hash ?? this.decoyHash)
    if (!matches || hash === undefined) return false
    if (this.verified.size >= MAX_VERIFIED) this.verified.clear()
    this.verified.add(key)
    return true
  }
}
