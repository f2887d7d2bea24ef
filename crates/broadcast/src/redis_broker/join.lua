-- A connection joins a channel: presence is registered for this process,
-- a presence event goes out if the user was nowhere on the channel, and
-- the answer carries the latest offset, the epoch, how many are here and
-- at most `cap` of them (a lobby of thousands is not read whole), and the
-- replay.
-- KEYS: seq, epoch, history, history bytes, presence (zset of
--       "user:process" by expiry), members (hash user -> member JSON),
--       counts (hash user -> how many entries they have in presence)
-- ARGV: user id, process id, member JSON, presence ttl (ms), keep (ms),
--       max age (ms), since ('' for none), pub/sub channel, list cap,
--       a new epoch
local now = now_ms()
local user = ARGV[1]
local ttl = tonumber(ARGV[4])
local keep = tonumber(ARGV[5])
local max_age = tonumber(ARGV[6])

start_over_if_lost(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[10])
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[2], keep)
local latest = tonumber(redis.call('GET', KEYS[1]))
local epoch = redis.call('GET', KEYS[2])

-- A new entry for this process counts; the user was here already if they
-- had an entry anywhere (the count, not a read of the presence set).
local entry = user .. ':' .. ARGV[2]
local present = true
if redis.call('ZADD', KEYS[5], now + ttl, entry) == 1 then
  present = redis.call('HINCRBY', KEYS[7], user, 1) > 1
end
redis.call('HSET', KEYS[6], user, ARGV[3])
for i = 5, 7 do
  redis.call('PEXPIRE', KEYS[i], keep)
end
-- The members hash holds exactly the users with entries.
local count = redis.call('HLEN', KEYS[6])
if not present then
  redis.call('PUBLISH', ARGV[8], presence_event(count, '+', ARGV[3]))
end

-- Who is here: everyone, or a sample of `cap` when there are more.
local cap = tonumber(ARGV[9])
local presence
if count <= cap then
  presence = redis.call('HVALS', KEYS[6])
else
  presence = {}
  local sample = redis.call('HRANDFIELD', KEYS[6], cap, 'WITHVALUES')
  for i = 2, #sample, 2 do
    table.insert(presence, sample[i])
  end
end

-- The replay: every message after `since`, if the history still has them.
local recovered = 1
local replay = {}
if ARGV[7] ~= '' then
  local since = tonumber(ARGV[7])
  if since > latest then
    recovered = 0
  elseif since < latest then
    local oldest = nil
    for _, entry in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
      local offset, at, frame = string.match(entry, '^(%d+) (%d+) (.*)$')
      offset = tonumber(offset)
      if tonumber(at) > now - max_age then
        if oldest == nil then oldest = offset end
        if offset > since then table.insert(replay, frame) end
      end
    end
    if oldest == nil or oldest > since + 1 then
      recovered = 0
      replay = {}
    end
  end
end
return {latest, epoch, recovered, count, presence, replay}
