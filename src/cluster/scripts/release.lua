-- release: ARGV = prefix, node, nick, reason. Frees a nick the node holds:
-- parted from each of its rooms, then offline with the reason (quit,
-- disconnect, timeout, ...). Returns {"ok", version} or {"not_owner"}.
local node, nick, reason = ARGV[2], ARGV[3], ARGV[4]
local v = free_nick(node, string.lower(nick), reason)
if not v then return { 'not_owner' } end
return { 'ok', v }
