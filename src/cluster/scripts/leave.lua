-- leave: ARGV = prefix, node, reason. A node shutting down frees all its
-- nicks at once (parted, then offline with the reason, e.g. "shutdown")
-- and is forgotten (down). Returns the number of nicks freed.
return drop_node(ARGV[2], ARGV[3])
