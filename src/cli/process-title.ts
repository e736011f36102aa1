/** Flags whose value is a secret: never shown in `ps` (the process title). */
export const SECRET_FLAGS = ['--sasl-password', '--redis-password', '--clickhouse-password', '--ssl-key-password'] as const

/**
 * The command line with the values of secret flags (`--flag value` and `--flag=value`) and the
 * passwords in URLs replaced by `***`.
 */
export function redactedCommandLine(args: readonly string[]): string {
  const shown: string[] = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    const flag = SECRET_FLAGS.find((name) => arg === name || arg.startsWith(`${name}=`))
    if (flag && arg === flag) {
      shown.push(arg)
      if (i + 1 < args.length) {
        shown.push('***')
        i++
      }
    } else if (flag) {
      shown.push(`${flag}=***`)
    } else {
      shown.push(arg.replace(/(\w+:\/\/[^:/@\s]*:)[^@\s]*@/g, '$1***@'))
    }
  }
  return shown.join(' ')
}
