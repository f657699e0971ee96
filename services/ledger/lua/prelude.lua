-- Shared head of the ledger's script (services/ledger/lua/*.lua are concatenated at build
-- time: this prelude, every event kind's apply function, then the epilogue that applies a
-- batch of events; see docs/ledger.md for every key).
--
-- ARGV[1] N of the read-receipt rule (0: off), ARGV[2] the reply window in ms, then the
-- events, each: kind (0..7, enum ledger_script), watermark field "<topic>:<partition>", the
-- record's offset, the offset of the record the ledger saw before it on that partition (-1:
-- none), the number of the event's own arguments, the arguments. While an event is applied,
-- its arguments are ARGV[A .. Z].
--
-- Every merge is monotonic and commutative (times keep their minimum, states only move up),
-- so the result does not depend on the order in which topics interleave; an event that stops
-- half-way (it should not) leaves nothing that a rerun would count twice.
local P = 'lst:lg:'
local RRN = tonumber(ARGV[1])
-- its list bounds as strings: a number argument to redis.call is printf-formatted every call
local RR_LAST, RR_TRIM = string.format('%d', RRN - 1), string.format('%d', -(RRN + 1))
local WINDOW = tonumber(ARGV[2])
local A, Z = 0, 0 -- the current event's arguments
local WM_FIELD, OFF, PREV

local rcall = redis.call

-- ---- item versions: m:<id>.v ------------------------------------------------------------
-- Every write to an item hash m:<id> goes through call() below, so no path can forget the
-- item's version v (docs/ledger.md, Item versions): the view API caches rendered rows by
-- (id, v). An HSET on an m: key gets "v <the event's version>" appended (no extra command);
-- another write (HDEL, HINCRBY, DEL, ...) notes the key, and mver_flush() sets v of the noted
-- hashes that still exist once the event (or the retention run) is done. The versions come
-- from the counter MVER outside lst:lg:* (a rebuild keeps it, so v never goes back and a row
-- cached before a rebuild is never taken for a new state): one INCRBY per script call
-- reserves a block of versions (more than its events), each event takes the next.
-- A fresh counter (Redis lost its data) starts at the time in microseconds for the same
-- reason. v depends on how many writes happened, so the canonical dumps leave it out.
local MP = P .. 'm:'
local MVER = 'lst:mver'
-- the write commands used on hashes: 'w' leaves the hash existing, 'd' may remove it
local MWRITE = {HSET = 'w', HINCRBY = 'w', HSETNX = 'w', HMSET = 'w', HINCRBYFLOAT = 'w',
                HDEL = 'd', DEL = 'd', UNLINK = 'd'}
local MTOUCHED = {} -- m: key -> 'v' (v set with its last write), 'w' or 'd' (v still to set)
local MV_BASE, MV_SEQ = nil, 0 -- the block of versions this script reserved, the last taken
local MV = nil -- the current event's version, taken at its first write to an item

local function mver()
    if MV == nil then
        if MV_BASE == nil then
            local k = math.floor(#ARGV / 5) + 2 -- an event has at least 5 arguments
            local r = rcall('INCRBY', MVER, k)
            if r == k then
                local t = rcall('TIME')
                r = tonumber(t[1]) * 1000000 + tonumber(t[2]) + k
                rcall('SET', MVER, string.format('%d', r))
            end
            MV_BASE = r - k
        end
        MV_SEQ = MV_SEQ + 1
        MV = string.format('%d', MV_BASE + MV_SEQ) -- not tostring: a Lua number is %.14g
    end
    return MV
end

local function is_item(key)
    return string.sub(key, 1, #MP) == MP
end

-- load_msg's fields per item key, for the rest of the script call: a batch often holds several
-- receipts of one message. Every write to an item through call() drops its entry; agg_status,
-- the one writer of the counts outside call(), updates the cached counts in place.
local MCACHE = {}

local function call(cmd, key, ...)
    local w = MWRITE[cmd]
    if w == nil then
        return rcall(cmd, key, ...)
    end
    if cmd == 'DEL' or cmd == 'UNLINK' then
        for k = 1, select('#', ...) do
            local other = select(k, ...)
            if is_item(other) then
                MTOUCHED[other] = 'd'
                MCACHE[other] = nil
            end
        end
    end
    if not is_item(key) then
        return rcall(cmd, key, ...)
    end
    MCACHE[key] = nil
    if cmd == 'HSET' then
        MTOUCHED[key] = 'v'
        local args = {...}
        args[#args + 1] = 'v'
        args[#args + 1] = mver()
        return rcall(cmd, key, unpack(args))
    end
    MTOUCHED[key] = w
    return rcall(cmd, key, ...)
end

local function mver_flush()
    if next(MTOUCHED) == nil then -- most events: a fresh table per event is garbage to collect
        MV = nil
        return
    end
    for key, w in pairs(MTOUCHED) do
        if w == 'w' or (w == 'd' and rcall('EXISTS', key) == 1) then
            rcall('HSET', key, 'v', mver())
        end
    end
    MTOUCHED = {}
    MV = nil
end

-- ---- small helpers ----------------------------------------------------------------------

local function num(v)
    return tonumber(v) or 0
end

local function arg(i)
    local v = ARGV[i]
    if v == nil or v == '' then
        return nil
    end
    return v
end

-- Crockford's base 32 digit values by byte, built on first use: the script's top level runs
-- on every call, and most calls decode no ULID.
local B32 = nil

local function b32_table()
    local t = {}
    local alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
    for i = 1, 32 do
        t[string.byte(alphabet, i)] = i - 1
    end
    return t
end

-- Milliseconds of a ULID message ID (its first 10 characters).
local function ulid_ms(id)
    B32 = B32 or b32_table()
    local b = {string.byte(id, 1, 10)}
    local t = 0
    for i = 1, 10 do
        t = t * 32 + (B32[b[i]] or 0)
    end
    return t
end

-- The Threema message ID -> "<mid> <eid>" map (lst.sent) in hashes t:<the ID's last five
-- characters>, field the whole ID: a top-level key per send cost about 120 bytes, a field of
-- a small (listpack) hash about 55 (issue 5: 20 M sends per million messages).
local function tkey(tm)
    return P .. 't:' .. string.sub(tm, -5)
end

-- Nobody erased (the usual case) is checked once per batch, not per event.
local ANY_ERASED = call('EXISTS', P .. 'erased') == 1

local function erased(eid)
    return ANY_ERASED and call('SISMEMBER', P .. 'erased', eid) == 1
end

-- One entry of a message's skp (message.lua, employee_erase.lua): [employee ID, reason].
local function skip_json(eid, reason)
    return '[' .. cjson.encode(eid) .. ',' .. cjson.encode(reason) .. ']'
end

-- The content of an outgoing message addressed to the erased employee alone: text and
-- attachments (the view-api deletes the blobs) go by one rule; kind, time, dispatcher and
-- category stay as the record of the send. docs/ledger.md, "Erasure".
local CONTENT = {'text', 'blob', 'mime', 'size', 'filename', 'caption', 'thumb', 'thumb_mime',
                 'lat', 'lon', 'acc', 'place', 'addr'}

-- The audience count (audience_count) no longer counts k erased recipients; at 0 the
-- message was addressed to erased employees alone and loses its content.
local function audience_less(mid, k)
    local mk = P .. 'm:' .. mid
    if call('HINCRBY', mk, 'audience', -k) <= 0 then
        call('HDEL', mk, unpack(CONTENT))
        call('HSET', mk, 'audience', '0', 'cgone', '1')
    end
end

-- ---- indexes: x:<dim>:<val> (everything) and xc:<cat>:<dim>:<val> (per category) --------

local function ixkey(dim, val)
    if dim == 'all' then
        return 'all'
    end
    return dim .. ':' .. val
end

-- Dimensions without per-category copies: an employee's history (emp) and a vehicle's
-- (usually one driver) are small enough for the view to filter by category on the item
-- hashes, and their copies were a fifth of the projections' memory (issue 5).
local NOCAT = {emp = true, veh = true}

-- Index keys are sorted sets, never item hashes: rcall, without call()'s version check.
local function ixadd(id, score, cat, dim, val)
    local k = ixkey(dim, val)
    rcall('ZADD', P .. 'x:' .. k, score, id)
    if cat and not NOCAT[dim] then
        rcall('ZADD', P .. 'xc:' .. cat .. ':' .. k, score, id)
    end
end

local function ixrem(id, cat, dim, val)
    local k = ixkey(dim, val)
    rcall('ZREM', P .. 'x:' .. k, id)
    if cat and not NOCAT[dim] then
        rcall('ZREM', P .. 'xc:' .. cat .. ':' .. k, id)
    end
end

-- ---- the employee's dimensions: x:dep:<d>, x:veh:<v>, x:tag:<t> ------------------------

-- The tags of a directory entry's tags field (a JSON array; absent or broken: none).
local function tags_of(raw)
    if not raw then
        return {}
    end
    local ok, t = pcall(cjson.decode, raw)
    if ok and type(t) == 'table' then
        return t
    end
    return {}
end

-- The filter dimensions an employee puts their items under, from the directory as it is now:
-- department, vehicle and every tag (a driver's depot and shift are the tags depot:<d> and
-- shift:<s>). Also returns the raw dep, veh and tags fields.
local function emp_dims(eid)
    local e = call('HMGET', P .. 'emp:' .. eid, 'dep', 'veh', 'tags')
    local d = {}
    if e[1] then
        d[#d + 1] = {'dep', e[1]}
    end
    if e[2] then
        d[#d + 1] = {'veh', e[2]}
    end
    for _, t in ipairs(tags_of(e[3])) do
        d[#d + 1] = {'tag', t}
    end
    return d, e
end

-- The directory set of a dimension's value (emp:dep:<d>, emp:veh:<v>, emp:tag:<t>).
local function emp_set(dim, val)
    return P .. 'emp:' .. dim .. ':' .. val
end

-- The selector's list for a dimension (departments, vehicles, tags) from the sel JSON.
local SEL_LIST = {dep = 'departments', veh = 'vehicles', tag = 'tags'}

local function sel_names(sel, dim, val)
    if not sel then
        return false
    end
    local ok, t = pcall(cjson.decode, sel)
    if not ok or type(t) ~= 'table' or type(t[SEL_LIST[dim]]) ~= 'table' then
        return false
    end
    for _, v in ipairs(t[SEL_LIST[dim]]) do
        if v == val then
            return true
        end
    end
    return false
end

-- Whether outgoing message mid stays under dim:val without employee except: its selector
-- names the value or another recipient has it now (an incoming item is under its sender's
-- values only, so nothing else justifies it).
local function justified(mid, dim, val, except)
    local h = call('HMGET', P .. 'm:' .. mid, 'dir', 'sel')
    if h[1] ~= 'out' then
        return false
    end
    if sel_names(h[2], dim, val) then
        return true
    end
    local others = {}
    for _, other in ipairs(call('HKEYS', P .. 'r:' .. mid)) do
        if other ~= except then
            others[#others + 1] = other
        end
    end
    -- in chunks: unpack is bounded by Lua's C stack (about 8000 values)
    local set = emp_set(dim, val)
    for k = 1, #others, 1000 do
        local chunk = call('SMISMEMBER', set, unpack(others, k, math.min(k + 999, #others)))
        for _, yes in ipairs(chunk) do
            if yes == 1 then
                return true
            end
        end
    end
    return false
end

-- ---- the change stream (ev): what the view API's live updates tail ----------------------
-- One entry per change a dispatcher should see at once: t=message (a new item), t=status (a
-- recipient's state moved; eid, st), t=annotation (handled or category changed). Capped at
-- about EV_MAX entries (MAXLEN ~). Not part of the rebuild-identical projections: a rebuild
-- re-emits every change with new stream IDs (docs/ledger.md).
local EV_MAX = '100000' -- a string: Lua formats a number argument with printf every call
local EV_KEY = P .. 'ev'

local function ev_add(t, id, ...)
    rcall('XADD', EV_KEY, 'MAXLEN', '~', EV_MAX, '*', 't', t, 'id', id, ...)
end

-- ---- per-recipient state ----------------------------------------------------------------
-- Times (ms): q queued, w failed-but-retrying, f failed for good, s accepted by the Gateway,
-- d delivered, r read, a acknowledged, x declined; each keeps the earliest time seen.

local STEPS = {'q', 'w', 'f', 's', 'd', 'r', 'a', 'x'}
local NSTEPS = #STEPS
local INTS = {'q', 'w', 'f', 's', 'd', 'r', 'a', 'x', 'fat', 'fh', 'att', 'dup', 'ff', 'cr'}
local STRS = {'tm', 'tid', 'fc', 'fr'}
local READER = {read = true, acknowledged = true, declined = true}

local function state_of(s)
    if s.a and s.x then
        if s.x >= s.a then
            return 'declined'
        end
        return 'acknowledged'
    end
    if s.a then
        return 'acknowledged'
    end
    if s.x then
        return 'declined'
    end
    if s.r then
        return 'read'
    end
    if s.d then
        return 'delivered'
    end
    if s.s then
        return 'sent'
    end
    if s.f then
        return 'failed'
    end
    if s.w then
        return 'retrying'
    end
    return 'queued'
end

-- Compact JSON with integers printed as integers (cjson would switch to exponents). Runs on
-- every state change, so the field names come quoted (INT_KEY, STR_KEY, in INTS's and STRS's
-- order) and the loops are numeric: ipairs, a global lookup or a table length per field showed
-- in lua_cost.sh.
local INT_KEY = {'"q":', '"w":', '"f":', '"s":', '"d":', '"r":', '"a":', '"x":', '"fat":',
                 '"fh":', '"att":', '"dup":', '"ff":', '"cr":'}
local STR_KEY = {'"tm":', '"tid":', '"fc":', '"fr":'}
local NINTS, NSTRS = #INTS, #STRS
local sfmt, jenc, tconcat = string.format, cjson.encode, table.concat

local function senc(s)
    local parts, n = {'{"st":"' .. s.st .. '"'}, 1
    for i = 1, NINTS do
        local v = s[INTS[i]]
        if v then
            n = n + 1
            parts[n] = INT_KEY[i] .. sfmt('%d', v)
        end
    end
    for i = 1, NSTRS do
        local v = s[STRS[i]]
        if v then
            n = n + 1
            parts[n] = STR_KEY[i] .. jenc(v)
        end
    end
    return tconcat(parts, ',') .. '}'
end

-- Failure details: the final one beats a retry, then the later one, then the larger code.
local function better_failure(s, o)
    if s.fc == nil then
        return true
    end
    local sf, of = num(s.ff), num(o.ff)
    if of ~= sf then
        return of > sf
    end
    if o.fat ~= s.fat then
        return o.fat > num(s.fat)
    end
    return o.fc > s.fc
end

-- Credits of the current event: key -> field -> count. Staged in Lua and written by the
-- epilogue once per script call and field (HINCRBY), committed only when the event succeeds:
-- three HINCRBY per accepted send were a fifth of Redis's work.
local CREDITS = {}

local function credit_add(at, disp, dep)
    local ck = P .. 'cr:' .. string.format('%d', math.floor(at / 86400000))
    local t = CREDITS[ck]
    if t == nil then
        t = {}
        CREDITS[ck] = t
    end
    t.all = (t.all or 0) + 1
    t['disp:' .. disp] = (t['disp:' .. disp] or 0) + 1
    if dep then
        t['dep:' .. dep] = (t['dep:' .. dep] or 0) + 1
    end
end

-- Adds the staged credits of src to dst (both key -> field -> count).
local function credits_fold(dst, src)
    for ck, t in pairs(src) do
        local d = dst[ck]
        if d == nil then
            d = {}
            dst[ck] = d
        end
        for f, n in pairs(t) do
            d[f] = (d[f] or 0) + n
        end
    end
end

local function credits_write(all)
    for ck, t in pairs(all) do
        for f, n in pairs(t) do
            call('HINCRBY', ck, f, n)
        end
    end
end

-- Counts one send (credits per day, dispatcher and department) if the message (who sent it)
-- is known; false when it is not yet. m: the message's fields when already read (load_msg).
local function credit_now(mid, at, m)
    local msg, disp, dep
    if m then
        msg, disp, dep = m.msg, m.disp, m.dep
    else
        local v = call('HMGET', P .. 'm:' .. mid, 'msg', 'disp', 'dep')
        msg, disp, dep = v[1], v[2], v[3]
    end
    if not msg then
        return false
    end
    credit_add(at, disp, dep)
    return true
end

-- Counts the send once, when both the accepted outcome and the message are known, whichever
-- came last (cr marks it counted).
local function count_credit(mid, s, m)
    if s.s == nil or s.cr then
        return
    end
    if credit_now(mid, s.s, m) then
        s.cr = 1
    end
end

-- A send whose recipient was erased still cost credits: counted now, or kept anonymously
-- (crx:<mid>, by Threema message ID) until the message arrives.
local function credit_anonymous(mid, tm, at)
    if not credit_now(mid, at) then
        call('HSET', P .. 'crx:' .. mid, tm, at)
    end
end

-- ---- per-message aggregates and status indexes ------------------------------------------

-- The fields of m:<mid> that a merge needs (credits, aggregates, status indexes; the counts
-- per state name of state_of), read with one HMGET per message and script call (MCACHE). The
-- field names are written out: the ledger's hottest read, and a Lua call or table insert per
-- field cost more than the command (lua_cost.sh).
local function load_msg(mid)
    local key = MP .. mid
    local m = MCACHE[key]
    if m then
        return m
    end
    local v = rcall('HMGET', key, 'msg', 'cat', 'at', 'disp', 'dep', 'n', 's:queued',
        's:retrying', 's:failed', 's:sent', 's:delivered', 's:read', 's:acknowledged',
        's:declined')
    m = {msg = v[1], cat = v[2], at = tonumber(v[3]), at_s = v[3], disp = v[4], dep = v[5],
         c = {n = tonumber(v[6]) or 0, queued = tonumber(v[7]) or 0,
              retrying = tonumber(v[8]) or 0, failed = tonumber(v[9]) or 0,
              sent = tonumber(v[10]) or 0, delivered = tonumber(v[11]) or 0,
              read = tonumber(v[12]) or 0, acknowledged = tonumber(v[13]) or 0,
              declined = tonumber(v[14]) or 0}}
    MCACHE[key] = m
    return m
end

-- Merges the observation o into the state of (mid, eid). Returns the old state name (nil
-- when the recipient was new), the new one and the set of steps that got their first time.
-- r: is not an item hash (no version to stamp), so it is read and written with rcall. A
-- state nothing changed is not encoded again: encoding is the merge's dearest part.
local function merge(mid, eid, o, m)
    local rk = P .. 'r:' .. mid
    local raw = rcall('HGET', rk, eid)
    local s = {}
    local old = nil
    if raw then
        s = cjson.decode(raw)
        old = s.st
    end
    local before = s.s
    local changed = {}
    local dirty = raw == nil
    for i = 1, NSTEPS do
        local k = STEPS[i]
        local v = o[k]
        if v then
            local cur = s[k]
            if cur == nil then
                changed[k] = true
                s[k] = v
                dirty = true
            elseif v < cur then
                s[k] = v
                dirty = true
            end
        end
    end
    if o.tm and (s.tm == nil or before == nil or o.s < before or (o.s == before and o.tm < s.tm)) then
        dirty = dirty or s.tm ~= o.tm or s.tid ~= o.tid
        s.tm = o.tm
        s.tid = o.tid
    end
    if o.fc and better_failure(s, o) then
        s.fc, s.fr, s.fh, s.fat, s.ff = o.fc, o.fr, o.fh, o.fat, o.ff
        dirty = true
    end
    if o.dup and o.dup > num(s.dup) then
        s.dup = o.dup
        dirty = true
    end
    if o.att and o.att > num(s.att) then
        s.att = o.att
        dirty = true
    end
    local cr = s.cr
    count_credit(mid, s, m)
    if dirty or s.cr ~= cr then
        s.st = state_of(s)
        local enc = senc(s)
        if enc ~= raw then
            rcall('HSET', rk, eid, enc)
        end
    end
    return old, s.st, changed, s
end

-- Which status indexes a message belongs to, from its counts.
local function status_flags(c)
    local readers = c.read + c.acknowledged + c.declined
    local live = c.n - c.failed
    return {
        failed = c.failed > 0,
        unread = readers < live,
        undelivered = c.delivered + readers < live,
    }
end

local STATUS_NAMES = {'failed', 'unread', 'undelivered'}

local function status_set(mid, cat, at, name, on)
    if on then
        ixadd(mid, at, cat, 'st', name)
    else
        ixrem(mid, cat, 'st', name)
    end
end

-- Sets every status index of a message from scratch (after the message record arrived).
local function status_full(mid)
    local m = load_msg(mid)
    if not m.msg then
        return
    end
    local f = status_flags(m.c)
    for i = 1, 3 do
        local name = STATUS_NAMES[i]
        status_set(mid, m.cat, m.at, name, f[name])
    end
end

-- The transition old -> new of one recipient: the counts in m:<mid> (one HSET, and an HDEL
-- when a count drops to zero: the hash must not depend on the path) and only the status
-- indexes whose membership flipped. m: load_msg's fields, from before the transition.
-- Returns the number of readers after it. The hottest write of the ledger, so it stamps the
-- item's version itself (as call() would: MTOUCHED 'v' and the version appended to the HSET)
-- instead of going through call()'s generic argument handling.
local function agg_status(mid, m, old, new)
    local c = m.c
    local before = status_flags(c)
    local mk = MP .. mid
    local f1, v1
    if old == nil then
        c.n = c.n + 1
        f1, v1 = 'n', c.n
    else
        local left = c[old] - 1
        c[old] = left
        if left == 0 then
            rcall('HDEL', mk, 's:' .. old) -- the version follows below; MCACHE's 0 is right
        else
            f1, v1 = 's:' .. old, left
        end
    end
    local now = c[new] + 1
    c[new] = now
    MTOUCHED[mk] = 'v'
    if f1 then
        rcall('HSET', mk, f1, v1, 's:' .. new, now, 'v', mver())
    else
        rcall('HSET', mk, 's:' .. new, now, 'v', mver())
    end
    if m.msg then
        local after = status_flags(c)
        for i = 1, 3 do
            local name = STATUS_NAMES[i]
            if after[name] ~= before[name] then
                status_set(mid, m.cat, m.at, name, after[name])
            end
        end
    end
    return c.read + c.acknowledged + c.declined
end

local function readers(mid)
    local v = rcall('HMGET', P .. 'm:' .. mid, 's:read', 's:acknowledged', 's:declined')
    return num(v[1]) + num(v[2]) + num(v[3])
end

-- ---- read receipts evidently switched off ------------------------------------------------
-- An employee is in rroff when the RRN most recent messages delivered to them (by message
-- time; e:<eid>:dl) include none they read (e:<eid>:rd, the messages they read, trimmed
-- alike) while at least one of them was read by someone else. A function of the final data
-- only, recomputed whenever one of its inputs changes; the common case costs two reads.

local function rr_update(eid)
    if RRN <= 0 then
        return
    end
    local mids = rcall('ZREVRANGE', P .. 'e:' .. eid .. ':dl', '0', RR_LAST)
    local off = false
    if #mids >= RRN then
        off = true
        local mine = rcall('ZMSCORE', P .. 'e:' .. eid .. ':rd', unpack(mids))
        for i = 1, #mids do
            if mine[i] then
                off = false
                break
            end
        end
        if off then
            local others = false
            for _, mid in ipairs(mids) do
                if readers(mid) > 0 then
                    others = true
                    break
                end
            end
            off = others
        end
    end
    if off then
        rcall('SADD', P .. 'rroff', eid)
    else
        rcall('SREM', P .. 'rroff', eid)
    end
end

-- The employees whose rule inputs changed in this script call, evaluated once each by
-- rr_flush at its end (the epilogue): the rule is a function of the final data, so one
-- evaluation after the batch gives what one after every event gave, and a batch often touches
-- the same drivers many times (a message's first reader re-evaluates all its recipients).
local RR_DIRTY = {}

local function rr_mark(eid)
    RR_DIRTY[eid] = true
end

local function rr_flush()
    for eid in pairs(RR_DIRTY) do
        rr_update(eid)
    end
    RR_DIRTY = {}
end

-- The first reader of a message is new evidence for every recipient still at delivered.
local function first_read(mid, reader)
    local all = rcall('HGETALL', P .. 'r:' .. mid)
    for i = 1, #all, 2 do
        local eid = all[i]
        if eid ~= reader and string.find(all[i + 1], '"st":"delivered"', 1, true) then
            rr_mark(eid)
        end
    end
end

-- Everything that follows a merge: aggregates, status indexes, read-receipt evidence.
-- Whether the state s had one of the steps before the merge that set changed.
local function had(s, changed, steps)
    for i = 1, #steps do
        local k = steps[i]
        if s[k] and not changed[k] then
            return true
        end
    end
    return false
end

local DRAX, RAX = {'d', 'r', 'a', 'x'}, {'r', 'a', 'x'}

local function after(mid, eid, old, new, changed, m, s)
    if old ~= new then
        if new ~= 'queued' then
            ev_add('status', mid, 'eid', eid, 'st', new)
        end
        local n_readers = agg_status(mid, m, old, new)
        if READER[new] and not READER[old or 'queued'] and n_readers == 1 then
            first_read(mid, eid)
        end
    end
    if RRN > 0 and (changed.d or changed.r or changed.a or changed.x) then
        -- A message already delivered (or read) went into dl then (and stays there or was
        -- trimmed for good: the top N of a growing set only rises), likewise rd.
        local mt = m.at_s or string.format('%d', ulid_ms(mid)) -- at: the same ms, kept by the message record
        local dl = P .. 'e:' .. eid .. ':dl'
        if not had(s, changed, DRAX) then
            rcall('ZADD', dl, mt, mid)
            rcall('ZREMRANGEBYRANK', dl, '0', RR_TRIM)
        end
        local read = changed.r or changed.a or changed.x
        if read and not had(s, changed, RAX) then
            local rd = P .. 'e:' .. eid .. ':rd'
            rcall('ZADD', rd, mt, mid)
            rcall('ZREMRANGEBYRANK', rd, '0', RR_TRIM)
        end
        -- a read can only take the employee out of rroff (no need to look when already marked)
        if changed.d or (read and not RR_DIRTY[eid] and rcall('SISMEMBER', P .. 'rroff', eid) == 1) then
            rr_mark(eid)
        end
    end
end

-- m: load_msg's fields when the caller keeps them across merges of one message (apply_message;
-- the merges keep its counts current), else read here.
local function merge_after(mid, eid, o, m)
    m = m or load_msg(mid)
    local old, new, changed, s = merge(mid, eid, o, m)
    after(mid, eid, old, new, changed, m, s)
    return old
end

-- ---- incoming messages: category, sender, reply link ------------------------------------

-- rules: lines "k\t<cat>" (a keyword rule that matched in C) or "d\t<department>\t<cat>".
local function categorize(rules, dep)
    if rules then
        for line in string.gmatch(rules, '[^\n]+') do
            local t, a, b = string.match(line, '^(%a)\t([^\t]*)\t?(.*)$')
            if t == 'k' then
                return a
            end
            if t == 'd' and dep and a == dep then
                return b
            end
        end
    end
    return 'inbox'
end

-- The messages sent to an employee: their history's outgoing items (x:emp:<eid>; outgoing IDs
-- are ULIDs, incoming event IDs contain ':') once the message record is applied, and before
-- that the sends in e:<eid>:out (an outbound or sent record came first, or the message record
-- does not list the employee). Together every message any record names the employee a
-- recipient of, each once: e:<eid>:out used to hold them all, ~2.5 KB per message (issue 5).

-- The latest message sent to eid with a time in [lo, at]: the highest time, then the larger ID
-- (ZREVRANGEBYSCORE's order), or nil.
local function latest_out(eid, at, lo)
    local p = call('ZREVRANGEBYSCORE', P .. 'e:' .. eid .. ':out', at, lo, 'WITHSCORES', 'LIMIT', 0, 1)
    local best, bs = p[1], tonumber(p[2])
    if best then
        lo = bs -- the history's items before the pending send cannot win
    end
    -- the history holds the employee's incoming items too: page until the first outgoing one
    local xk, off, page = P .. 'x:emp:' .. eid, 0, 16
    while true do
        local r = call('ZREVRANGEBYSCORE', xk, at, lo, 'WITHSCORES', 'LIMIT', off, page)
        for j = 1, #r, 2 do
            local id = r[j]
            if not string.find(id, ':', 1, true) then
                local sc = tonumber(r[j + 1])
                if best == nil or sc > bs or (sc == bs and id > best) then
                    return id
                end
                return best
            end
        end
        if #r < 2 * page then
            return best
        end
        off = off + page
    end
end

-- Links incoming id (at) to the latest message sent to eid within the window before it.
local function link_reply(id, at, eid)
    local best = latest_out(eid, at, at - WINDOW)
    local mk = P .. 'm:' .. id
    local cur = call('HGET', mk, 'reply_to')
    if best == nil or best == cur then
        return
    end
    if cur then
        call('ZREM', P .. 'rep:' .. cur, id)
    end
    call('HSET', mk, 'reply_to', best)
    call('ZADD', P .. 'rep:' .. best, at, id)
end

-- A new message to eid at mt may be the better link of replies already recorded after it.
local function relink(eid, mid, mt)
    local ids = call('ZRANGEBYSCORE', P .. 'e:' .. eid .. ':in', mt, mt + WINDOW)
    for _, id in ipairs(ids) do
        local at = tonumber(call('ZSCORE', P .. 'e:' .. eid .. ':in', id))
        local cur = call('HGET', P .. 'm:' .. id, 'reply_to')
        if not cur or mid > cur then
            if cur then
                call('ZREM', P .. 'rep:' .. cur, id)
            end
            call('HSET', P .. 'm:' .. id, 'reply_to', mid)
            call('ZADD', P .. 'rep:' .. mid, at, id)
        end
    end
end

-- A send to eid became known before its message record listed eid (outbound.lua, sent.lua: a
-- record created the recipient): pending in e:<eid>:out until apply_message moves it into the
-- history. A new reply candidate.
local function note_out(eid, mid)
    local mt = ulid_ms(mid)
    if call('ZADD', P .. 'e:' .. eid .. ':out', mt, mid) == 1 then
        relink(eid, mid, mt)
    end
end

-- The message record listed eid (x:emp:<eid> has mid now). old: the recipient's state before
-- (nil: new). A send pending in e:<eid>:out leaves it; one that was not there is a new reply
-- candidate. Only a record about the send puts it in e:<eid>:out, and that record created the
-- recipient's state, so a new recipient has nothing pending.
local function out_listed(eid, mid, old)
    if old == nil or call('ZREM', P .. 'e:' .. eid .. ':out', mid) == 0 then
        relink(eid, mid, ulid_ms(mid))
    end
end

-- Every message sent to eid (erasure): the pending sends and the history's outgoing items.
local function outs_of(eid)
    local outs = call('ZRANGE', P .. 'e:' .. eid .. ':out', 0, -1)
    local seen = {}
    for _, mid in ipairs(outs) do
        seen[mid] = true
    end
    for _, id in ipairs(call('ZRANGE', P .. 'x:emp:' .. eid, 0, -1)) do
        if not seen[id] and not string.find(id, ':', 1, true) then
            outs[#outs + 1] = id
        end
    end
    return outs
end

-- Indexes an incoming item under its category: everything, direction, kind.
local function index_inbound_base(id, at, cat, kind)
    call('SADD', P .. 'cats', cat)
    ixadd(id, at, cat, 'all')
    ixadd(id, at, cat, 'dir', 'in')
    ixadd(id, at, cat, 'kind', kind)
end

-- ---- annotations (annotation.lua): a dispatcher's category and "handled" -----------------

-- The item's category: a dispatcher's change (annotation.lua) outranks the message's own
-- category and the rules. Both go into cats, so that the set of categories does not depend
-- on whether the change came before or after the item.
local function effective_cat(id, own)
    call('SADD', P .. 'cats', own)
    return call('HGET', P .. 'ann:' .. id, 'cat') or own
end

-- Copies the effective "handled" of ann:/annh: into the item's hash (when the item is
-- there); true when the item exists.
local function ann_fold(id)
    local mk = P .. 'm:' .. id
    if call('HEXISTS', mk, 'dir') == 0 then
        return false
    end
    local u = call('HGET', P .. 'ann:' .. id, 'u_at') or '-1'
    local h = call('ZRANGEBYSCORE', P .. 'annh:' .. id, u, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if h[1] then
        call('HSET', mk, 'handled_by', h[1], 'handled_at', h[2])
    else
        call('HDEL', mk, 'handled_by', 'handled_at')
    end
    return true
end

-- An incoming item records the sender's department, vehicle and tags it is indexed under
-- (dep, veh, tags), so that erasure, retention and a directory change find its entries.
local function item_set_dims(mk, e)
    local names = {'dep', 'veh', 'tags'}
    local set, del = {}, {}
    for k = 1, 3 do
        if e[k] then
            set[#set + 1] = names[k]
            set[#set + 1] = e[k]
        else
            del[#del + 1] = names[k]
        end
    end
    if #set > 0 then
        call('HSET', mk, unpack(set))
    end
    if #del > 0 then
        call('HDEL', mk, unpack(del))
    end
end

-- The dimensions an incoming item is indexed under, from its own fields (item_set_dims).
local function item_dims_in(h_dep, h_veh, h_tags)
    local d = {}
    if h_dep then
        d[#d + 1] = {'dep', h_dep}
    end
    if h_veh then
        d[#d + 1] = {'veh', h_veh}
    end
    for _, t in ipairs(tags_of(h_tags)) do
        d[#d + 1] = {'tag', t}
    end
    return d
end

-- The index suffixes ("all", "dir:in", "emp:<eid>", ...) an item may be in. h: the item's
-- cat, dir, kind, disp, eid, dep, veh, sel, tags.
local function item_dims(id, h)
    local dims = {'all', 'dir:' .. h[2], 'kind:' .. (h[3] or ''), 'st:failed', 'st:unread',
                  'st:undelivered'}
    local function add(dim, v)
        if v then
            dims[#dims + 1] = dim .. ':' .. v
        end
    end
    add('disp', h[4])
    add('emp', h[5])
    for _, d in ipairs(item_dims_in(h[6], h[7], h[9])) do
        add(d[1], d[2])
    end
    if h[2] == 'out' then
        for _, eid in ipairs(call('HKEYS', P .. 'r:' .. id)) do
            add('emp', eid)
            for _, d in ipairs(emp_dims(eid)) do
                add(d[1], d[2])
            end
        end
        local ok, sel = pcall(cjson.decode, h[8] or '{}')
        if ok and type(sel) == 'table' then
            for dim, list in pairs(SEL_LIST) do
                if type(sel[list]) == 'table' then
                    for _, v in ipairs(sel[list]) do
                        add(dim, v)
                    end
                end
            end
        end
    end
    return dims
end

-- Moves an item from its category's indexes (xc:<old>:...) to new's. The x:... indexes do
-- not depend on the category. An item not there yet gets the category when it arrives
-- (effective_cat).
local function recategorize(id, new)
    local mk = P .. 'm:' .. id
    local h = call('HMGET', mk, 'cat', 'dir', 'kind', 'disp', 'eid', 'dep', 'veh', 'sel', 'tags')
    local old = h[1]
    if not h[2] or old == new then
        return
    end
    local seen = {}
    for _, dim in ipairs(item_dims(id, h)) do
        if not seen[dim] and not NOCAT[string.match(dim, '^[^:]+')] then
            seen[dim] = true
            local score = old and call('ZSCORE', P .. 'xc:' .. old .. ':' .. dim, id)
            if score then
                call('ZREM', P .. 'xc:' .. old .. ':' .. dim, id)
                call('ZADD', P .. 'xc:' .. new .. ':' .. dim, score, id)
            end
        end
    end
    call('HSET', mk, 'cat', new)
end

-- Gives an incoming item its employee (now known), category and the employee's indexes.
local function attach(id, at, eid)
    local mk = P .. 'm:' .. id
    local h = call('HMGET', mk, 'cat', 'kind', 'rules')
    local dims, e = emp_dims(eid)
    local cat = effective_cat(id, categorize(h[3], e[1]))
    if h[1] and h[1] ~= cat then
        ixrem(id, h[1], 'all')
        ixrem(id, h[1], 'dir', 'in')
        ixrem(id, h[1], 'kind', h[2])
    end
    call('HSET', mk, 'eid', eid, 'cat', cat)
    index_inbound_base(id, at, cat, h[2])
    ixadd(id, at, cat, 'emp', eid)
    item_set_dims(mk, e)
    for _, d in ipairs(dims) do
        ixadd(id, at, cat, d[1], d[2])
    end
    call('ZADD', P .. 'e:' .. eid .. ':in', at, id)
    link_reply(id, at, eid)
end

-- Key/value pairs from ARGV[i .. i + 2n - 1] into a flat list for HSET and a table.
local function read_kv(i, n)
    local flat, t = {}, {}
    for j = 0, n - 1 do
        local k, v = ARGV[i + 2 * j], ARGV[i + 2 * j + 1]
        flat[#flat + 1] = k
        flat[#flat + 1] = v
        t[k] = v
    end
    return flat, t, i + 2 * n
end
