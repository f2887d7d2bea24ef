-- Every few seconds, once per process for a batch of its channels (not
-- once per channel): renews this process's presence entries and each
-- channel's keys, and retires the entries of processes that stopped
-- renewing (crashed), sending a presence event for each user who then has no entry
-- on the channel. Renewals come first, so this process's own entries are
-- never taken for expired. Only expired entries are read.
-- KEYS: per channel, 5 keys: seq, epoch, presence, members, counts
-- ARGV: process id, presence ttl (ms), keep (ms), then per channel: its
--       pub/sub channel, n, then n pairs of user id and member JSON
local now = now_ms()
local process = ARGV[1]
local ttl = tonumber(ARGV[2])
local keep = tonumber(ARGV[3])
local a = 4
local left = 0
for c = 0, #KEYS / 5 - 1 do
  local presence, members, counts = KEYS[c * 5 + 3], KEYS[c * 5 + 4], KEYS[c * 5 + 5]
  local topic = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  for i = 1, n do
    local user = ARGV[a]
    if redis.call('ZADD', presence, now + ttl, user .. ':' .. process) == 1 then
      -- Lost meanwhile (a Redis restart): counted again.
      redis.call('HINCRBY', counts, user, 1)
    end
    redis.call('HSET', members, user, ARGV[a + 1])
    a = a + 2
  end
  local expired = redis.call('ZRANGEBYSCORE', presence, '-inf', now)
  if #expired > 0 then
    redis.call('ZREMRANGEBYSCORE', presence, '-inf', now)
    for _, entry in ipairs(expired) do
      local user = string.match(entry, '^(%-?%d+):')
      if user and redis.call('HINCRBY', counts, user, -1) <= 0 then
        redis.call('HDEL', counts, user)
        local member = redis.call('HGET', members, user)
        if member then
          redis.call('HDEL', members, user)
          redis.call('PUBLISH', topic, presence_event(redis.call('HLEN', members), '-', member))
          left = left + 1
        end
      end
    end
  end
  for i = 1, 5 do
    redis.call('PEXPIRE', KEYS[c * 5 + i], keep)
  end
end
return left
