/** The samples of a Prometheus text answer: `name{labels}` → value. */
export function prometheusSamples(text: string): Map<string, number> {
  const values = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    values.set(line.slice(0, space), Number(line.slice(space + 1)))
  }
  return values
}

/** The samples of `<base>/metrics`. */
export async function scrapeMetrics(base: string): Promise<Map<string, number>> {
  return prometheusSamples(await (await fetch(`${base}/metrics`)).text())
}
