/** A database, table or key name given in options or flags is not acceptable. */
export class IdentifierError extends Error {
  override name = 'IdentifierError'
}

const SQL_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/
const SQL_IDENTIFIER_MAX_LENGTH = 128

/**
 * Checks a ClickHouse database or table name: a letter or `_`, then letters, digits or `_`, at most
 * 128 characters. Returns the name; throws IdentifierError naming `what` otherwise.
 */
export function validateSqlIdentifier(name: string, what: string): string {
  if (!SQL_IDENTIFIER.test(name) || name.length > SQL_IDENTIFIER_MAX_LENGTH) {
    throw new IdentifierError(
      `invalid ${what} ${JSON.stringify(name)}: use a letter or _ followed by letters, digits or _ (at most ${SQL_IDENTIFIER_MAX_LENGTH} characters)`,
    )
  }
  return name
}

/** Validates and backtick-quotes a SQL identifier, e.g. `ipc` → `` `ipc` ``. */
export function quoteSqlIdentifier(name: string, what: string): string {
  return `\`${validateSqlIdentifier(name, what)}\``
}

const REDIS_KEY = /^[\x21-\x7E]+$/
const REDIS_KEY_MAX_LENGTH = 512

/**
 * Checks a Redis key: 1 to 512 printable ASCII characters without spaces (e.g. `ipc:unique_device_ips`).
 * Redis itself accepts any bytes; this keeps keys readable in `redis-cli` and in shell scripts.
 */
export function validateRedisKey(key: string): string {
  if (!REDIS_KEY.test(key) || key.length > REDIS_KEY_MAX_LENGTH) {
    throw new IdentifierError(
      `invalid Redis key ${JSON.stringify(key)}: use 1 to ${REDIS_KEY_MAX_LENGTH} printable ASCII characters without spaces (e.g. ipc:unique_device_ips)`,
    )
  }
  return key
}
