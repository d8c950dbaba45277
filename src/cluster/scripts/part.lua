-- part: ARGV = prefix, node, nick, room. The nick leaves the room (removed
-- when its last member leaves); publishes parted. Returns {"ok", version},
-- {"not_in_room"} or {"not_owner"}.
local node, nick, room = ARGV[2], ARGV[3], ARGV[4]
local folded, froom = string.lower(nick), string.lower(room)
local entry = redis.call('HGET', NICKS, folded)
if not entry or split_entry(entry) ~= node then return { 'not_owner' } end
if redis.call('SISMEMBER', room_key(froom), folded) == 0 then return { 'not_in_room' } end
local _, spelled = split_entry(entry)
return { 'ok', publish('parted', node, spelled, leave_room(folded, froom)) }
