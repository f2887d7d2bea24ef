-- This process's last connection of a user leaves a channel; a leave goes
-- out if the user has no live connection there on any process.
-- KEYS: presence, members
-- ARGV: user id, process id, pub/sub channel, leave frame
local now = now_ms()
local user = ARGV[1]
redis.call('ZREM', KEYS[1], user .. ':' .. ARGV[2])
for _, entry in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  if string.match(entry, '^(%-?%d+):') == user then return 0 end
end
redis.call('HDEL', KEYS[2], user)
redis.call('PUBLISH', ARGV[3], '0 -\n' .. ARGV[4])
return 1
