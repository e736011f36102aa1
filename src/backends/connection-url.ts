/**
 * Removes the password (and user name) from a URL so it can appear in messages and logs.
 * A string that is not a valid URL is returned with anything between `//` and `@` cut out.
 */
export function urlWithoutCredentials(url: string): string {
  try {
    const parsed = new URL(url)
    if (!parsed.username && !parsed.password) return url
    parsed.username = ''
    parsed.password = ''
    const text = parsed.toString()
    // WHATWG URLs gain a `/` path on http(s); keep the form the user wrote.
    return text.endsWith('/') && !url.endsWith('/') ? text.slice(0, -1) : text
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//')
  }
}

/** `text` as a URL if it is one with one of `protocols` (e.g. `['http:', 'https:']`); undefined otherwise. */
export function parseUrlWithProtocol(text: string, protocols: readonly string[]): URL | undefined {
  try {
    const url = new URL(text)
    return protocols.includes(url.protocol) ? url : undefined
  } catch {
    return undefined
  }
}
