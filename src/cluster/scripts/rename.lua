-- rename: ARGV = prefix, node, old, new. Moves a nick the node holds to a
-- new one (or a new spelling of the same one), rooms included, and
-- publishes rename. Returns {"ok", version}, {"taken", node},
-- {"not_owner"} or {"no_node"}.
local node, old, new = ARGV[2], ARGV[3], ARGV[4]
if not alive(node) then return { 'no_node' } end
local fo, fn = string.lower(old), string.lower(new)
local entry = redis.call('HGET', NICKS, fo)
if not entry then return { 'not_owner' } end
local owner, held = split_entry(entry)
if owner ~= node or held ~= old then return { 'not_owner' } end
if fn ~= fo then
  local other = redis.call('HGET', NICKS, fn)
  if other then
    local holder = split_entry(other)
    return { 'taken', holder }
  end
  redis.call('HDEL', NICKS, fo)
  redis.call('SREM', node_nicks(node), fo)
  redis.call('SADD', node_nicks(node), fn)
  local rooms = redis.call('SMEMBERS', member_key(fo))
  for _, froom in ipairs(rooms) do
    redis.call('SREM', room_key(froom), fo)
    redis.call('SADD', room_key(froom), fn)
  end
  if #rooms > 0 then redis.call('RENAME', member_key(fo), member_key(fn)) end
end
redis.call('HSET', NICKS, fn, node .. ' ' .. new)
return { 'ok', publish('rename', node, old, new) }
