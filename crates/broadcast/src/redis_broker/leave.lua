-- This process's last connection of a user leaves a channel; a presence
-- event goes out if the user then has no live entry there on any process. The count
-- of a user's entries answers that without reading the presence set.
-- KEYS: presence, members, counts
-- ARGV: user id, process id, pub/sub channel
local user = ARGV[1]
if redis.call('ZREM', KEYS[1], user .. ':' .. ARGV[2]) == 0 then
  return 0
end
if redis.call('HINCRBY', KEYS[3], user, -1) > 0 then
  return 0
end
redis.call('HDEL', KEYS[3], user)
local member = redis.call('HGET', KEYS[2], user)
redis.call('HDEL', KEYS[2], user)
if member then
  redis.call('PUBLISH', ARGV[3], presence_event(redis.call('HLEN', KEYS[2]), '-', member))
end
return 1
