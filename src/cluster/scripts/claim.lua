-- claim: ARGV = prefix, node, nick. One winner, whichever node asks first:
-- records nick -> node and publishes online in the same atomic step.
-- Returns {"ok", version} (also when this node already holds this exact
-- nick: nothing changes, nothing is published), {"taken", node} (held,
-- compared case-insensitively), or {"no_node"} (this node's heartbeat is
-- missing or expired: heartbeat first, then re-announce).
local node, nick = ARGV[2], ARGV[3]
if not alive(node) then return { 'no_node' } end
local folded = string.lower(nick)
local entry = redis.call('HGET', NICKS, folded)
if entry then
  local owner, held = split_entry(entry)
  if owner == node and held == nick then return { 'ok', version() } end
  return { 'taken', owner }
end
redis.call('HSET', NICKS, folded, node .. ' ' .. nick)
redis.call('SADD', node_nicks(node), folded)
return { 'ok', publish('online', node, nick) }
