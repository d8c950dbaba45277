-- join: ARGV = prefix, node, nick, room, max_members (0: no limit). The
-- nick (held by this node) joins the room, which keeps the spelling of
-- whoever created it; publishes joined. Returns {"ok", version, joined,
-- spelling} (joined 0: already a member, nothing published),
-- {"room_full"}, {"not_owner"} or {"no_node"}.
local node, nick, room, max = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
if not alive(node) then return { 'no_node' } end
local folded, froom = string.lower(nick), string.lower(room)
local entry = redis.call('HGET', NICKS, folded)
if not entry or split_entry(entry) ~= node then return { 'not_owner' } end
local rkey = room_key(froom)
local display = redis.call('HGET', ROOMS, froom) or room
if redis.call('SISMEMBER', rkey, folded) == 1 then
  return { 'ok', version(), 0, display }
end
if max > 0 and redis.call('SCARD', rkey) >= max then return { 'room_full' } end
redis.call('HSET', ROOMS, froom, display)
redis.call('SADD', rkey, folded)
redis.call('SADD', member_key(folded), froom)
local _, spelled = split_entry(entry)
return { 'ok', publish('joined', node, spelled, display), 1, display }
