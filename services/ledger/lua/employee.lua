-- lst.employees upsert: ARGV[A] employee id, [A+1] updated_at, [A+2] n key/value pairs for
-- the directory hash (name, dep, veh, tid, phone, email, active, tags JSON, ...), the pairs,
-- then the tags to the end. An older record than the stored one (updated_at) is ignored.
-- A new department or vehicle adds the employee's whole history to that index; messages
-- from the employee's Threema ID that arrived before the employee get attached now.
local function set_member(prefix, old, new, eid)
    if old and old ~= new then
        call('SREM', P .. prefix .. old, eid)
    end
    if new then
        call('SADD', P .. prefix .. new, eid)
    end
end

local function fan_out(eid, dim, val)
    local items = call('ZRANGE', P .. 'x:emp:' .. eid, 0, -1, 'WITHSCORES')
    for i = 1, #items, 2 do
        local cat = call('HGET', P .. 'm:' .. items[i], 'cat')
        ixadd(items[i], items[i + 1], cat, dim, val)
    end
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
    if f.dep and f.dep ~= o[2] then
        fan_out(eid, 'dep', f.dep)
    end
    if f.veh and f.veh ~= o[3] then
        fan_out(eid, 'veh', f.veh)
    end
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
