/**
 * Validates and normalises device IPs so one device is one device:
 * IPv4 in dotted decimal without leading zeros; IPv6 in RFC 5952 form (lower case, leading zeros
 * dropped, the longest run of two or more zero groups compressed to `::`). An IPv4-mapped IPv6
 * address (`::ffff:10.1.2.3`) is the IPv4 device and normalises to `10.1.2.3`.
 * Rejected: ports, brackets, zone ids (`fe80::1%eth0`), surrounding spaces, octal/hex IPv4.
 * Returns undefined for anything that is not an IP address.
 */
export function normalizeIp(input: string): string | undefined {
  if (input.length === 0 || input.length > 45) return undefined
  if (input.includes(':')) return normalizeIpv6(input)
  return isIpv4(input) ? input : undefined
}

/** Strict dotted-decimal IPv4: four decimal octets 0–255, no leading zeros. */
export function isIpv4(text: string): boolean {
  const length = text.length
  if (length < 7 || length > 15) return false
  let octets = 0
  let value = 0
  let digits = 0
  for (let i = 0; i <= length; i++) {
    const code = i === length ? 46 : text.charCodeAt(i)
    if (code === 46) {
      if (digits === 0 || value > 255) return false
      octets++
      value = 0
      digits = 0
    } else if (code >= 48 && code <= 57) {
      if (digits === 1 && value === 0) return false
      value = value * 10 + (code - 48)
      digits++
      if (digits > 3) return false
    } else {
      return false
    }
  }
  return octets === 4
}

function parseIpv4Groups(text: string): [number, number] | undefined {
  if (!isIpv4(text)) return undefined
  const [a, b, c, d] = text.split('.').map(Number)
  return [(a << 8) | b, (c << 8) | d]
}

function parseHexGroup(text: string): number | undefined {
  if (text.length === 0 || text.length > 4) return undefined
  let value = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    let digit: number
    if (code >= 48 && code <= 57) digit = code - 48
    else if (code >= 97 && code <= 102) digit = code - 87
    else if (code >= 65 && code <= 70) digit = code - 55
    else return undefined
    value = value * 16 + digit
  }
  return value
}

function parseGroupList(text: string, allowTrailingIpv4: boolean): number[] | undefined {
  if (text === '') return []
  const parts = text.split(':')
  const groups: number[] = []
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]
    if (allowTrailingIpv4 && i === parts.length - 1 && part.includes('.')) {
      const pair = parseIpv4Groups(part)
      if (!pair) return undefined
      groups.push(pair[0], pair[1])
      continue
    }
    const group = parseHexGroup(part)
    if (group === undefined) return undefined
    groups.push(group)
  }
  return groups
}

function parseIpv6(text: string): number[] | undefined {
  const gap = text.indexOf('::')
  if (gap === -1) {
    const groups = parseGroupList(text, true)
    return groups && groups.length === 8 ? groups : undefined
  }
  if (text.indexOf('::', gap + 1) !== -1) return undefined
  const head = parseGroupList(text.slice(0, gap), false)
  const tail = parseGroupList(text.slice(gap + 2), true)
  if (!head || !tail || head.length + tail.length > 7) return undefined
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail]
}

function normalizeIpv6(text: string): string | undefined {
  const groups = parseIpv6(text)
  if (!groups) return undefined
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    return `${groups[6] >> 8}.${groups[6] & 255}.${groups[7] >> 8}.${groups[7] & 255}`
  }
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength) {
      bestStart = i
      bestLength = j - i
    }
    i = j
  }
  const hex = groups.map((group) => group.toString(16))
  if (bestStart === -1) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`
}
