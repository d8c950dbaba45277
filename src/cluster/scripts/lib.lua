-- Shared by every script (prepended when the crate is built). ARGV[1] is
-- the cluster's prefix, "chat:{NAME}:"; every key and channel starts with
-- it. Nicks and rooms are stored case-folded (ASCII lower case) with their
-- spelling beside them.
local P = ARGV[1]
local NICKS = P .. 'nicks'      -- hash: folded nick -> "NODE NICK"
local NODES = P .. 'nodes'      -- zset: node -> expiry (ms, Redis TIME)
local ROOMS = P .. 'rooms'      -- hash: folded room -> spelling
local VERSION = P .. 'version'  -- counter: one step per directory event

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function node_nicks(node) return P .. 'node:' .. node .. ':nicks' end
local function member_key(folded) return P .. 'member:' .. folded end
local function room_key(froom) return P .. 'room:' .. froom end

-- "NODE NICK" -> NODE, NICK
local function split_entry(entry)
  local sp = string.find(entry, ' ', 1, true)
  return string.sub(entry, 1, sp - 1), string.sub(entry, sp + 1)
end

local function version()
  return tonumber(redis.call('GET', VERSION) or '0')
end

-- Publishes "dir VERSION KIND ARGS..." on the all channel, in the same
-- atomic step as the change it describes; returns the version.
local function publish(kind, ...)
  local v = redis.call('INCR', VERSION)
  redis.call('PUBLISH', P .. 'all', table.concat({ 'dir', string.format('%d', v), kind, ... }, ' '))
  return v
end

-- Lua numbers are doubles printed with 14 digits: write integers in full.
local function int(n) return string.format('%d', n) end

-- Whether the node's heartbeat is current.
local function alive(node)
  local expiry = redis.call('ZSCORE', NODES, node)
  return expiry and tonumber(expiry) > now_ms()
end

-- Removes a folded nick from a room; returns the room's spelling.
local function leave_room(folded, froom)
  local display = redis.call('HGET', ROOMS, froom) or froom
  local rkey = room_key(froom)
  redis.call('SREM', rkey, folded)
  redis.call('SREM', member_key(folded), froom)
  if redis.call('SCARD', rkey) == 0 then
    redis.call('HDEL', ROOMS, froom)
  end
  return display
end

-- Frees a nick the node owns: parts every room (publishing parted, in room
-- order), then offline. Returns the last version, or nil if not the owner.
local function free_nick(node, folded, reason)
  local entry = redis.call('HGET', NICKS, folded)
  if not entry then return nil end
  local owner, nick = split_entry(entry)
  if owner ~= node then return nil end
  local rooms = redis.call('SMEMBERS', member_key(folded))
  table.sort(rooms)
  for _, froom in ipairs(rooms) do
    publish('parted', node, nick, leave_room(folded, froom))
  end
  redis.call('DEL', member_key(folded))
  redis.call('HDEL', NICKS, folded)
  redis.call('SREM', node_nicks(node), folded)
  return publish('offline', node, nick, reason)
end

-- Frees every nick of a node and forgets the node; publishes down.
local function drop_node(node, reason)
  local folded = redis.call('SMEMBERS', node_nicks(node))
  table.sort(folded)
  for _, f in ipairs(folded) do
    free_nick(node, f, reason)
  end
  redis.call('DEL', node_nicks(node))
  redis.call('ZREM', NODES, node)
  publish('down', node, reason)
  return #folded
end

-- Drops every node whose heartbeat expired at or before now; returns them.
local function reap(now)
  local expired = redis.call('ZRANGEBYSCORE', NODES, '-inf', string.format('%d', now))
  for _, node in ipairs(expired) do
    drop_node(node, 'disconnect')
  end
  return expired
end
