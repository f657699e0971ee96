-- lst.annotations: ARGV[A] item id, [A+1] kind (handled | unhandled | category), [A+2] user,
-- [A+3] at (ms), [A+4] the new category (kind category only).
--
-- ann:<id> keeps what decides the item's annotations, so that any order of the same records
-- gives the same result (and an annotation may arrive before its item):
--   cat, cat_at, cat_by  the category change that wins: the latest `at`, then the larger
--                        "<category>\t<user>" (a deterministic tiebreak on the same ms)
--   u_at                 the latest "unhandled"
-- annh:<id> (zset, score at, member user) every "handled". The item is handled when some
-- handled is at or after u_at; handled_by / handled_at are the earliest such one (ties: the
-- smaller user ID), so a second dispatcher marking it handled does not take it over: handled
-- is sticky until someone explicitly un-handles it later.
-- annt:<threema id> (set) the annotated incoming items of that sender (an incoming item's ID
-- is "<sender's Threema ID>:<message ID>"; outgoing ULIDs have no ':'): erasure finds her
-- items' annotations there, also of items that never arrived or that retention purged.
local function ann_wins(cur_at, cur_key, at, key)
    if not cur_at then -- a Redis nil is false in Lua
        return true
    end
    cur_at = tonumber(cur_at)
    if at ~= cur_at then
        return at > cur_at
    end
    return key > cur_key
end

-- An annotation of an incoming item from a sender closed by an erasure (emp:tid:<tid> is
-- '-') is dropped, as inbound.lua drops the item: one after the tombstone must not re-create
-- what the erasure removed. A category it names still goes into cats (a list of names, not
-- about her), so that cats does not depend on whether it came before or after the erasure.
-- Else the item is noted in annt:<tid>. Outgoing items: one find, nothing else.
local function ann_incoming(id, kind)
    local c = string.find(id, ':', 1, true)
    if not c then
        return true
    end
    local tid = string.sub(id, 1, c - 1)
    if call('GET', P .. 'emp:tid:' .. tid) == '-' then
        if kind == 'category' then
            call('SADD', P .. 'cats', ARGV[A + 4])
        end
        return false
    end
    call('SADD', P .. 'annt:' .. tid, id)
    return true
end

local function apply_annotation()
    local id, kind, user, at = ARGV[A], ARGV[A + 1], ARGV[A + 2], tonumber(ARGV[A + 3])
    if not ann_incoming(id, kind) then
        return
    end
    local ak = P .. 'ann:' .. id
    if kind == 'category' then
        local cat = ARGV[A + 4]
        local cur = call('HMGET', ak, 'cat_at', 'cat', 'cat_by')
        local cur_key = (cur[2] or '') .. '\t' .. (cur[3] or '')
        call('SADD', P .. 'cats', cat) -- every category named, also by a change that loses
        if not ann_wins(cur[1], cur_key, at, cat .. '\t' .. user) then
            return
        end
        call('HSET', ak, 'cat', cat, 'cat_at', at, 'cat_by', user)
        recategorize(id, cat)
    elseif kind == 'handled' then
        call('ZADD', P .. 'annh:' .. id, at, user)
    else
        local u = tonumber(call('HGET', ak, 'u_at') or '-1')
        if at <= u then
            return
        end
        call('HSET', ak, 'u_at', at)
    end
    if ann_fold(id) then
        ev_add('annotation', id)
    end
end
