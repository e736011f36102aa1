/**
 * The values of a command that takes any number of positional values and only boolean flags, in
 * the order given, repeats included (oclif's own `argv` groups repeated values together).
 * Before the first `--`, a token naming one of `booleanFlags` is a flag and every other token is a
 * value (also `-5` and `--not-a-flag`, as oclif passes them on for a non-strict command); after
 * it, every token is a value.
 */
export function positionalValues(argv: readonly string[], booleanFlags: readonly string[]): string[] {
  const end = argv.indexOf('--')
  const beforeDashDash = end === -1 ? argv : argv.slice(0, end)
  const values = beforeDashDash.filter((token) => !booleanFlags.includes(token))
  return end === -1 ? values : [...values, ...argv.slice(end + 1)]
}
