/** A web configuration file (--web-config) that cannot be used; its message never contains a hash or a key. */
export class WebConfigError extends Error {
  override name = 'WebConfigError'
}

/** HTTP server limits that contradict each other or cannot work (a time-out of 0). */
export class HttpLimitsError extends Error {
  override name = 'HttpLimitsError'
}
