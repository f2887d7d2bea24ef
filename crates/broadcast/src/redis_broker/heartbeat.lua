-- Every few seconds, per channel with connections here: renews this
-- process's presence entries and the channel's keys, and retires the
-- entries of processes that stopped renewing (crashed), sending a leave
-- for each user who is then nowhere on the channel.
-- KEYS: seq, epoch, presence, members
-- ARGV: process id, presence ttl (ms), keep (ms), pub/sub channel,
--       channel name as JSON, then pairs of user id and member JSON
local now = now_ms()
local ttl = tonumber(ARGV[2])
local keep = tonumber(ARGV[3])

local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
end
for i = 6, #ARGV, 2 do
  redis.call('ZADD', KEYS[3], now + ttl, ARGV[i] .. ':' .. ARGV[1])
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
end

local live = {}
for _, entry in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. now, '+inf')) do
  live[string.match(entry, '^(%-?%d+):')] = true
end
local left = 0
for _, entry in ipairs(expired) do
  local user = string.match(entry, '^(%-?%d+):')
  if user and not live[user] then
    local member = redis.call('HGET', KEYS[4], user)
    if member then
      redis.call('HDEL', KEYS[4], user)
      redis.call('PUBLISH', ARGV[4],
        '0 -\n{"op":"leave","channel":' .. ARGV[5] .. ',"user":' .. member .. '}')
      left = left + 1
    end
  end
end
for i = 1, 4 do
  redis.call('PEXPIRE', KEYS[i], keep)
end
return left
