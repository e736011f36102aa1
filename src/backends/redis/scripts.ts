import {createHash} from 'node:crypto'

/** Elements per PFADD call inside the write script (Lua's unpack has a limit of a few thousand). */
export const PFADD_CHUNK_SIZE = 1000

/**
 * Writes one batch as a single command. KEYS[1] is the all-time key. ARGV starts with the number of
 * keys that get an expiry, then (key index, epoch seconds) pairs; the rest are groups, one per
 * (UTC hour, error code) of the batch: the indexes of its error-code, hour and hour×code keys (0: the
 * hour is past its TTL, skip it), its device count and its devices. Each device is sent once per
 * group and PFADDed into all four keys here, rather than sent four times (the client's encoding of
 * the arguments is the larger cost of a write). Every key of one base key shares a hash slot, so this
 * also runs on a Redis Cluster.
 */
export const WRITE_SCRIPT = `
local at = 2 + 2 * tonumber(ARGV[1])
while at <= #ARGV do
  local codeKey = KEYS[tonumber(ARGV[at])]
  local hourIndex = tonumber(ARGV[at + 1])
  local hourCodeIndex = tonumber(ARGV[at + 2])
  local first = at + 4
  local last = first + tonumber(ARGV[at + 3]) - 1
  while first <= last do
    local upto = math.min(first + ${PFADD_CHUNK_SIZE - 1}, last)
    redis.call('PFADD', KEYS[1], unpack(ARGV, first, upto))
    redis.call('PFADD', codeKey, unpack(ARGV, first, upto))
    if hourIndex > 0 then redis.call('PFADD', KEYS[hourIndex], unpack(ARGV, first, upto)) end
    if hourCodeIndex > 0 then redis.call('PFADD', KEYS[hourCodeIndex], unpack(ARGV, first, upto)) end
    first = upto + 1
  end
  at = last + 1
end
for pair = 1, tonumber(ARGV[1]) do
  redis.call('EXPIREAT', KEYS[tonumber(ARGV[2 * pair])], ARGV[2 * pair + 1])
end
return #KEYS
`
export const WRITE_SCRIPT_SHA1 = createHash('sha1').update(WRITE_SCRIPT).digest('hex')
