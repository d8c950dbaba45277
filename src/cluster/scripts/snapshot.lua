-- snapshot: ARGV = prefix. The whole directory in one atomic read:
-- {version, {nick, node, ...}, {room, {nick, ...}, ...}, {node, expiry_ms, ...}, now_ms}
-- with nicks and rooms as spelled, members sorted. Every event with a
-- version above the one returned is newer than this picture.
local nicks = {}
local flat = redis.call('HGETALL', NICKS)
for i = 1, #flat, 2 do
  local node, nick = split_entry(flat[i + 1])
  nicks[#nicks + 1] = nick
  nicks[#nicks + 1] = node
end
local rooms = {}
local rflat = redis.call('HGETALL', ROOMS)
for i = 1, #rflat, 2 do
  local names = {}
  for _, f in ipairs(redis.call('SMEMBERS', room_key(rflat[i]))) do
    local entry = redis.call('HGET', NICKS, f)
    if entry then
      local _, nick = split_entry(entry)
      names[#names + 1] = nick
    end
  end
  table.sort(names)
  rooms[#rooms + 1] = rflat[i + 1]
  rooms[#rooms + 1] = names
end
return { version(), nicks, rooms, redis.call('ZRANGE', NODES, 0, -1, 'WITHSCORES'), now_ms() }
