-- Retention (a script of its own, not a Kafka event): appended to the prelude and
-- employee_erase.lua, whose helpers it uses. ARGV[3] the cutoff (ms), ARGV[4] the most items
-- to purge. Purges the oldest items of the global timeline at or before the cutoff from every
-- projection: the message hash, per-recipient states, replies' links, every index it is in
-- (found from its own fields, its recipients and their current directory entries), the
-- Threema message ID mappings, its annotations. Credits stay counted (days, not messages).
-- Then up to as many held receipts (h:, hx) that no send outcome claimed by the cutoff: a
-- receipt for a send this ledger never recorded would otherwise stay forever.
-- Returns the number of items purged, the time of the oldest item left (or -1) and the number
-- of held receipts purged.
local CUTOFF, MAXN = tonumber(ARGV[3]), tonumber(ARGV[4])

local function purge_outbound(mid)
    local mk = P .. 'm:' .. mid
    local h = call('HMGET', mk, 'cat', 'kind', 'disp', 'sel', 'skp')
    local cat = h[1]
    ixrem(mid, cat, 'all')
    ixrem(mid, cat, 'dir', 'out')
    if h[2] then
        ixrem(mid, cat, 'kind', h[2])
    end
    if h[3] then
        ixrem(mid, cat, 'disp', h[3])
    end
    for _, st in ipairs({'failed', 'unread', 'undelivered'}) do
        ixrem(mid, cat, 'st', st)
    end
    if h[4] then
        local ok, sel = pcall(cjson.decode, h[4])
        if ok and type(sel) == 'table' then
            for dim, list in pairs(SEL_LIST) do
                for _, v in ipairs(type(sel[list]) == 'table' and sel[list] or {}) do
                    ixrem(mid, cat, dim, v)
                end
            end
        end
    end
    if h[5] then -- the skipped employees' index entries (erasure's way to the message)
        for _, e in ipairs(cjson.decode(h[5])) do
            call('ZREM', P .. 'e:' .. e[1] .. ':skp', mid)
        end
    end
    local r = call('HGETALL', P .. 'r:' .. mid)
    for i = 1, #r, 2 do
        local eid = r[i]
        ixrem(mid, cat, 'emp', eid)
        for _, d in ipairs(emp_dims(eid)) do
            ixrem(mid, cat, d[1], d[2])
        end
        for _, k in ipairs({'out', 'dl', 'rd'}) do -- out: a send still pending there
            call('ZREM', P .. 'e:' .. eid .. ':' .. k, mid)
        end
        local ok, s = pcall(cjson.decode, r[i + 1])
        if ok and type(s) == 'table' and s.tm then
            call('HDEL', tkey(s.tm), s.tm)
            call('DEL', P .. 'h:' .. s.tm)
            call('ZREM', P .. 'hx', s.tm)
        end
    end
    for _, rid in ipairs(call('ZRANGE', P .. 'rep:' .. mid, 0, -1)) do
        call('HDEL', P .. 'm:' .. rid, 'reply_to')
    end
    call('DEL', mk, P .. 'r:' .. mid, P .. 'rep:' .. mid, P .. 'crx:' .. mid)
end

local function purge_inbound(id)
    local h = call('HMGET', P .. 'm:' .. id, 'eid', 'from')
    if h[1] then
        call('ZREM', P .. 'e:' .. h[1] .. ':in', id)
    end
    if h[2] then
        call('ZREM', P .. 'tidp:' .. h[2], id)
    end
    erase_inbound(id)
end

-- Its annotations (ann:, annh:) and, for an incoming item, its entry in annt:<sender> (the
-- index erasure reads, annotation.lua). An annotation applied after the purge re-creates
-- them: nothing tells it the item was purged (docs/ledger.md, "Retention").
local function purge_annotations(id)
    ann_erase(id)
    local c = string.find(id, ':', 1, true)
    if c then
        call('SREM', P .. 'annt:' .. string.sub(id, 1, c - 1), id)
    end
end

local ids = call('ZRANGEBYSCORE', P .. 'x:all', '-inf', CUTOFF, 'LIMIT', 0, MAXN)
for _, id in ipairs(ids) do
    if call('HGET', P .. 'm:' .. id, 'dir') == 'in' then
        purge_inbound(id)
    else
        purge_outbound(id)
    end
    purge_annotations(id)
    call('ZREM', P .. 'x:all', id) -- also when the hash was gone already
end
mver_flush() -- replies that lost their reply_to
local held = call('ZRANGEBYSCORE', P .. 'hx', '-inf', CUTOFF, 'LIMIT', 0, MAXN)
for _, tm in ipairs(held) do
    call('DEL', P .. 'h:' .. tm)
end
if #held > 0 then
    call('ZREM', P .. 'hx', unpack(held))
end
if #ids > 0 or #held > 0 then
    -- the one write to the projections that advances no watermark: native.c's transactions
    -- watch the watermarks and this counter instead of every key they read
    rcall('INCR', 'lst:lg-gen')
end
local oldest = call('ZRANGE', P .. 'x:all', 0, 0, 'WITHSCORES')
return {#ids, oldest[2] and tonumber(oldest[2]) or -1, #held}
