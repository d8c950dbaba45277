-- reap: ARGV = prefix. Any node may run it, any number of times: every node
-- whose heartbeat expired (by Redis' own clock) has its nicks freed (parted
-- from each room, then offline with reason "disconnect"), is forgotten and
-- published as down. Returns the nodes dropped (none on a second run).
return reap(now_ms())
