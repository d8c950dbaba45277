-- heartbeat: ARGV = prefix, node, ttl_ms.
-- Reaps every expired node first (this one too, if its own heartbeat is
-- late: then its users are shown offline like any dead node's), then sets
-- this node's expiry to now + ttl. Returns {state, now_ms, reaped}:
-- state "alive" (it was registered) or "new" (it was not, or was just
-- reaped: the node must re-announce its users and rooms); reaped: the nodes
-- dropped by this call.
local node, ttl = ARGV[2], tonumber(ARGV[3])
local now = now_ms()
local reaped = reap(now)
local known = redis.call('ZSCORE', NODES, node)
redis.call('ZADD', NODES, int(now + ttl), node)
local state = 'alive'
if not known then
  state = 'new'
  publish('up', node)
end
return { state, now, reaped }
