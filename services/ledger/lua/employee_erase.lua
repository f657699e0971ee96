-- lst.employees tombstone (GDPR erasure): ARGV[A] employee id. Removes the employee from the
-- directory and every projection: their incoming messages, their per-recipient states (with
-- the aggregates and status indexes adjusted), their history and indexes, the Threema message
-- ID mappings of their sends, the annotations of their incoming items. Later records about
-- them are dropped (erased set) until a new directory record re-creates them.
local function erase_inbound(id)
    local mk = P .. 'm:' .. id
    local h = call('HMGET', mk, 'cat', 'kind', 'eid', 'dep', 'veh', 'reply_to', 'at', 'from',
        'tags')
    local cat = h[1]
    ixrem(id, cat, 'all')
    ixrem(id, cat, 'dir', 'in')
    ixrem(id, cat, 'kind', h[2])
    if h[3] then
        ixrem(id, cat, 'emp', h[3])
    end
    for _, d in ipairs(item_dims_in(h[4], h[5], h[9])) do
        ixrem(id, cat, d[1], d[2])
    end
    if h[6] then
        call('ZREM', P .. 'rep:' .. h[6], id)
    end
    call('DEL', mk)
end

-- The annotations of her incoming item id (annotation.lua): the winning category change and
-- u_at (ann:), every "handled" (annh:).
local function ann_erase(id)
    call('DEL', P .. 'ann:' .. id, P .. 'annh:' .. id)
end

-- The annotations of every item annotated from tid (annt:<tid>), once the erasure closed it
-- ('-'; annotation.lua drops later ones by the same test): also of items that never arrived
-- or that retention purged. A Threema ID that maps to someone else is not hers to erase.
local function ann_erase_tid(tid)
    if call('GET', P .. 'emp:tid:' .. tid) ~= '-' then
        return
    end
    local k = P .. 'annt:' .. tid
    for _, id in ipairs(call('SMEMBERS', k)) do
        ann_erase(id)
    end
    call('DEL', k)
end

local function scrub_selector(mid, eid)
    local mk = P .. 'm:' .. mid
    local raw = call('HGET', mk, 'sel_emps')
    if not raw then
        return
    end
    local keep = {}
    for _, e in ipairs(cjson.decode(raw)) do
        if e ~= eid then
            keep[#keep + 1] = cjson.encode(e)
        end
    end
    call('HSET', mk, 'sel_emps', '[' .. table.concat(keep, ',') .. ']')
end

-- Her entry in the skipped list of a message that targeted her but did not send to her.
local function scrub_skipped(mid, eid)
    local mk = P .. 'm:' .. mid
    local raw = call('HGET', mk, 'skp')
    if not raw then
        return -- retention purged the message
    end
    local keep = {}
    for _, e in ipairs(cjson.decode(raw)) do
        if e[1] ~= eid then
            keep[#keep + 1] = skip_json(e[1], e[2])
        end
    end
    call('HSET', mk, 'skp', '[' .. table.concat(keep, ',') .. ']')
end

-- The erased employee's department, vehicle and tags no longer list mid unless something
-- else does (justified: the selector or a remaining recipient).
local function unindex_member(mid, dim, val)
    if val and not justified(mid, dim, val, nil) then
        ixrem(mid, call('HGET', P .. 'm:' .. mid, 'cat'), dim, val)
    end
end

local function erase_recipient(mid, eid)
    local rk, mk = P .. 'r:' .. mid, P .. 'm:' .. mid
    local raw = call('HGET', rk, eid)
    local h = call('HMGET', mk, 'msg', 'eid')
    if raw and h[1] then
        audience_less(mid, 1) -- the message record counted her (else message.lua does)
    end
    if h[2] == eid then
        call('HDEL', mk, 'eid') -- sent to her alone: the item no longer names her
    end
    if raw then
        local s = cjson.decode(raw)
        if s.tm then
            call('HSET', tkey(s.tm), s.tm, '-') -- later receipts for it are dropped
            if s.s and not s.cr then
                call('HSET', P .. 'crx:' .. mid, s.tm, s.s) -- credits still to count
            end
        end
        call('HDEL', rk, eid)
        for _, f in ipairs({'n', 's:' .. s.st}) do
            if call('HINCRBY', P .. 'm:' .. mid, f, -1) == 0 then
                call('HDEL', P .. 'm:' .. mid, f) -- as if never counted
            end
        end
        status_full(mid)
    end
    scrub_selector(mid, eid)
end

-- Whether a change stream entry (its flat field list) is about the erased employee: her
-- status (or an earlier erased entry), or an item of hers (an incoming item's ID starts
-- with the sender's Threema ID and ':', also one retention purged earlier).
local function ev_about(f, eid, gone, tids)
    for k = 1, #f, 2 do
        local v = f[k + 1]
        if f[k] == 'eid' and v == eid then
            return true
        elseif f[k] == 'id' then
            local c = string.find(v, ':', 1, true) -- outgoing IDs (ULIDs) have none
            if c and (gone[v] or tids[string.sub(v, 1, c - 1)]) then
                return true
            end
        end
    end
    return false
end

-- The change stream forgets her: every entry about her goes (XDEL; a replay after the
-- erasure shows nothing of hers), and one t=erased eid=<eid> tells open streams to drop
-- what they show of her. A scan of the whole stream (bounded by EV_MAX; erasure is rare),
-- so ordinary events pay nothing for it.
local function ev_erase(eid, gone, tids)
    local from = '-'
    while true do
        local batch = rcall('XRANGE', EV_KEY, from, '+', 'COUNT', 1000)
        local del = {}
        for _, e in ipairs(batch) do
            if ev_about(e[2], eid, gone, tids) then
                del[#del + 1] = e[1]
            end
        end
        if #del > 0 then
            rcall('XDEL', EV_KEY, unpack(del))
        end
        if #batch < 1000 then
            break
        end
        from = '(' .. batch[#batch][1]
    end
    rcall('XADD', EV_KEY, 'MAXLEN', '~', EV_MAX, '*', 't', 'erased', 'eid', eid)
end

local function apply_employee_erase()
    local eid = ARGV[A]
    local ek = P .. 'emp:' .. eid
    local o = call('HMGET', ek, 'dep', 'veh', 'tid', 'tags')
    local gone, tids = {}, {} -- her incoming items, her Threema IDs: for ev_erase
    if o[3] then
        tids[o[3]] = true
    end
    -- first the recipients' states (justified reads the remaining ones)
    local outs = outs_of(eid)
    for _, mid in ipairs(outs) do
        erase_recipient(mid, eid)
    end
    for _, mid in ipairs(outs) do
        unindex_member(mid, 'dep', o[1])
        unindex_member(mid, 'veh', o[2])
        for _, t in ipairs(tags_of(o[4])) do
            unindex_member(mid, 'tag', t)
        end
    end
    -- messages that skipped her: an explicit ID there is in sel_emps too
    for _, mid in ipairs(call('ZRANGE', P .. 'e:' .. eid .. ':skp', 0, -1)) do
        scrub_skipped(mid, eid)
        scrub_selector(mid, eid)
    end
    if o[1] then
        call('SREM', P .. 'emp:dep:' .. o[1], eid)
    end
    if o[2] then
        call('SREM', P .. 'emp:veh:' .. o[2], eid)
    end
    if o[3] then
        if call('GET', P .. 'emp:tid:' .. o[3]) == eid then
            call('SET', P .. 'emp:tid:' .. o[3], '-') -- later messages from it are dropped
        end
        local pk = P .. 'tidp:' .. o[3]
        for _, id in ipairs(call('ZRANGE', pk, 0, -1)) do
            erase_inbound(id)
            ann_erase(id)
            gone[id] = true
        end
        call('DEL', pk)
    end
    -- the Threema IDs learned from gateway-out's outcomes (sent.lua) are closed like the ERP's
    for _, tid in ipairs(call('SMEMBERS', P .. 'emp:ltid:' .. eid)) do
        tids[tid] = true
        if call('GET', P .. 'emp:tid:' .. tid) == eid then
            call('SET', P .. 'emp:tid:' .. tid, '-')
        end
    end
    call('DEL', P .. 'emp:ltid:' .. eid)
    if o[4] then
        for _, t in ipairs(cjson.decode(o[4])) do
            call('SREM', P .. 'emp:tag:' .. t, eid)
        end
    end
    call('SREM', P .. 'emp:active', eid)
    call('DEL', ek)
    call('ZREM', P .. 'emps', eid)
    for _, id in ipairs(call('ZRANGE', P .. 'x:emp:' .. eid, 0, -1)) do
        if call('HGET', P .. 'm:' .. id, 'dir') == 'in' then
            erase_inbound(id)
            ann_erase(id) -- also from a Threema ID she no longer has (not in annt: below)
            gone[id] = true
        end
    end
    for tid in pairs(tids) do
        ann_erase_tid(tid)
    end
    call('DEL', P .. 'x:emp:' .. eid, P .. 'e:' .. eid .. ':out', P .. 'e:' .. eid .. ':in',
        P .. 'e:' .. eid .. ':dl', P .. 'e:' .. eid .. ':rd', P .. 'e:' .. eid .. ':skp')
    call('SREM', P .. 'rroff', eid)
    call('SADD', P .. 'erased', eid)
    ANY_ERASED = true
    ev_erase(eid, gone, tids)
end
