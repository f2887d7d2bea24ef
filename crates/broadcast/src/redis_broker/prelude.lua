-- Put before every script of the Redis broker (see redis_broker.rs).

-- Redis's own clock, so every process agrees on ages and expiries.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A channel whose offset or epoch is gone (new, expired, or lost by a
-- Redis restart) starts over: offset 0, a new epoch, no history.
local function start_over_if_lost(seq, epoch, history, bytes, new_epoch)
  if redis.call('EXISTS', seq) == 0 or redis.call('EXISTS', epoch) == 0 then
    redis.call('SET', seq, 0)
    redis.call('SET', epoch, new_epoch)
    redis.call('DEL', history, bytes)
  end
end


-- A user arrived ('+') or left ('-') a channel, for every process to
-- batch into its members' next presence frame: 'p <count>\n<+|-><member>'.
local function presence_event(count, sign, member)
  return 'p ' .. count .. '\n' .. sign .. member
end
