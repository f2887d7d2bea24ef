-- Publishes one history message atomically: the offset, the history entry
-- and the fan-out happen in one step, so every process sees one order.
-- KEYS: seq, epoch, history, history bytes
-- ARGV: pub/sub channel, frame before the offset, frame after it,
--       max messages, max bytes, max age (ms), keep (ms), a new epoch
local now = now_ms()
local max_messages = tonumber(ARGV[4])
local max_bytes = tonumber(ARGV[5])
local max_age = tonumber(ARGV[6])
local keep = tonumber(ARGV[7])

start_over_if_lost(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[8])
local offset = redis.call('INCR', KEYS[1])
local frame = ARGV[2] .. offset .. ARGV[3]
redis.call('RPUSH', KEYS[3], offset .. ' ' .. now .. ' ' .. frame)
local bytes = redis.call('INCRBY', KEYS[4], #frame)

-- Trim the oldest entries past any of the three bounds.
while true do
  local count = redis.call('LLEN', KEYS[3])
  if count == 0 then break end
  local head = redis.call('LINDEX', KEYS[3], 0)
  local head_offset, head_at = string.match(head, '^(%d+) (%d+) ')
  local head_bytes = #head - #head_offset - #head_at - 2
  if count > max_messages or bytes > max_bytes or tonumber(head_at) <= now - max_age then
    redis.call('LPOP', KEYS[3])
    bytes = redis.call('DECRBY', KEYS[4], head_bytes)
  else
    break
  end
end

redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[2], keep)
redis.call('PEXPIRE', KEYS[3], max_age)
redis.call('PEXPIRE', KEYS[4], max_age)
redis.call('PUBLISH', ARGV[1], offset .. ' -\n' .. frame)
return offset
