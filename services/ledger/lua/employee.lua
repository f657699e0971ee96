-- lst.employees upsert: ARGV[A] employee id, [A+1] updated_at, [A+2] n key/value pairs for
-- the directory hash (name, dep, veh, tid, phone, email, active, tags JSON, ...), the pairs,
-- then the tags to the end. An older record than the stored one (updated_at) is ignored.
-- A change of department, vehicle or tags moves the employee's whole history between those
-- indexes (move_history); messages from the employee's Threema ID that arrived before the
-- employee get attached now.
local function set_member(prefix, old, new, eid)
    if old and old ~= new then
        call('SREM', P .. prefix .. old, eid)
    end
    if new then
        call('SADD', P .. prefix .. new, eid)
    end
end

-- The values of olds that are not in news (both lists).
local function minus(olds, news)
    local keep, out = {}, {}
    for _, v in ipairs(news) do
        keep[v] = true
    end
    for _, v in ipairs(olds) do
        if not keep[v] then
            out[#out + 1] = v
        end
    end
    return out
end

-- Moves the employee's history (x:emp:<eid>) from the values of a dimension they no longer
-- have to the ones they got: every item enters the new values' indexes, and leaves an old
-- one unless something else justifies it there (the selector, another recipient; justified).
-- An incoming item follows its sender, its dep/veh/tags fields with it. Bounded by the
-- history times its recipients; directory changes are rare.
local function move_history(eid, dim, olds, news, e)
    local added, removed = minus(news, olds), minus(olds, news)
    if #added == 0 and #removed == 0 then
        return
    end
    local items = call('ZRANGE', P .. 'x:emp:' .. eid, 0, -1, 'WITHSCORES')
    for i = 1, #items, 2 do
        local id, score = items[i], items[i + 1]
        local mk = P .. 'm:' .. id
        local h = call('HMGET', mk, 'cat', 'dir')
        for _, v in ipairs(added) do
            ixadd(id, score, h[1], dim, v)
        end
        for _, v in ipairs(removed) do
            if not justified(id, dim, v, eid) then
                ixrem(id, h[1], dim, v)
            end
        end
        if h[2] == 'in' then
            item_set_dims(mk, e)
        end
    end
end

local function list1(v)
    if v then
        return {v}
    end
    return {}
end

local function apply_employee()
    local eid, upd = ARGV[A], tonumber(ARGV[A + 1])
    local ek = P .. 'emp:' .. eid
    local flat, f, i = read_kv(A + 3, tonumber(ARGV[A + 2]))
    local o = call('HMGET', ek, 'updated_at', 'dep', 'veh', 'tid', 'tags')
    if o[1] and tonumber(o[1]) > upd then
        return
    end
    call('SREM', P .. 'erased', eid)
    set_member('emp:dep:', o[2], f.dep, eid)
    set_member('emp:veh:', o[3], f.veh, eid)
    if o[4] and o[4] ~= f.tid and call('GET', P .. 'emp:tid:' .. o[4]) == eid then
        call('DEL', P .. 'emp:tid:' .. o[4])
    end
    if o[5] then
        for _, t in ipairs(cjson.decode(o[5])) do
            call('SREM', P .. 'emp:tag:' .. t, eid)
        end
    end
    for j = i, Z do
        call('SADD', P .. 'emp:tag:' .. ARGV[j], eid)
    end
    if f.active == '1' then
        call('SADD', P .. 'emp:active', eid)
    else
        call('SREM', P .. 'emp:active', eid)
    end
    call('DEL', ek)
    call('HSET', ek, 'id', eid, 'updated_at', ARGV[A + 1], unpack(flat))
    call('ZADD', P .. 'emps', 0, eid)
    local e = {f.dep, f.veh, f.tags}
    move_history(eid, 'dep', list1(o[2]), list1(f.dep), e)
    move_history(eid, 'veh', list1(o[3]), list1(f.veh), e)
    local tags = {}
    for j = i, Z do
        tags[#tags + 1] = ARGV[j]
    end
    move_history(eid, 'tag', tags_of(o[5]), tags, e)
    if f.tid then
        call('SET', P .. 'emp:tid:' .. f.tid, eid)
        local pk = P .. 'tidp:' .. f.tid
        local ids = call('ZRANGE', pk, 0, -1, 'WITHSCORES')
        for j = 1, #ids, 2 do
            attach(ids[j], tonumber(ids[j + 1]), eid)
        end
        if #ids > 0 then
            call('DEL', pk)
        end
    end
end
