import {createHash} from 'node:crypto'

/** Elements per PFADD call inside the write script (Lua's unpack has a limit of a few thousand). */
export const PFADD_CHUNK_SIZE = 1000

/**
 * Writes one batch as a single command. KEYS[1] is the all-time key, KEYS[2] the last-write key.
 * ARGV[1] is the time of the write (epoch ms), which KEYS[2] takes unless it holds a later one (writers
 * whose clocks differ a little keep it moving forward). ARGV[2] is the number of keys that get an
 * expiry, then come (key index, epoch seconds) pairs; the rest are groups, one per
 * (UTC hour, error code) of the batch: the indexes of its error-code, hour and hour×code keys (0: the
 * hour is past its TTL, skip it), then its devices: a count and that many devices given one per
 * argument (devices that are empty or hold a line feed), then all the others in one argument,
 * separated by line feeds. Each device is sent once per group and PFADDed into all four keys here,
 * rather than sent four times; and sending a group's devices as one argument spares the client
 * the encoding of an argument per device, the larger part of its cost of a write. Every key of one
 * base key shares a hash slot, so this also runs on a Redis Cluster.
 */
export const WRITE_SCRIPT = `
local function addAll(codeKey, hourKey, hourCodeKey, devices, first, last)
  while first <= last do
    local upto = math.min(first + ${PFADD_CHUNK_SIZE - 1}, last)
    redis.call('PFADD', KEYS[1], unpack(devices, first, upto))
    redis.call('PFADD', codeKey, unpack(devices, first, upto))
    if hourKey then redis.call('PFADD', hourKey, unpack(devices, first, upto)) end
    if hourCodeKey then redis.call('PFADD', hourCodeKey, unpack(devices, first, upto)) end
    first = upto + 1
  end
end
local at = 3 + 2 * tonumber(ARGV[2])
while at <= #ARGV do
  local codeKey = KEYS[tonumber(ARGV[at])]
  local hourKey = KEYS[tonumber(ARGV[at + 1])]
  local hourCodeKey = KEYS[tonumber(ARGV[at + 2])]
  local separate = tonumber(ARGV[at + 3])
  addAll(codeKey, hourKey, hourCodeKey, ARGV, at + 4, at + 3 + separate)
  local joined = {}
  local count = 0
  for device in string.gmatch(ARGV[at + 4 + separate], '[^\\n]+') do
    count = count + 1
    joined[count] = device
  end
  addAll(codeKey, hourKey, hourCodeKey, joined, 1, count)
  at = at + 5 + separate
end
for pair = 1, tonumber(ARGV[2]) do
  redis.call('EXPIREAT', KEYS[tonumber(ARGV[2 * pair + 1])], ARGV[2 * pair + 2])
end
local lastWrite = tonumber(redis.call('GET', KEYS[2]))
if not lastWrite or lastWrite < tonumber(ARGV[1]) then redis.call('SET', KEYS[2], ARGV[1]) end
return #KEYS
`
export const WRITE_SCRIPT_SHA1 = createHash('sha1').update(WRITE_SCRIPT).digest('hex')
