-- lst.message: ARGV[A] message id, [A+1] created_at, [A+2] n key/value pairs for the
-- message hash, then the pairs, then the count and names of the selector's departments,
-- the count and names of its vehicles, the count and names of its tags, the count of skipped
-- employees and as many pairs (employee ID, reason), then the recipients (employee IDs) to
-- the end.
-- The skipped employees (view-api's audience resolution) as skp, a JSON array of
-- [employee ID, reason] in record order; each one's e:<eid>:skp lists mid so that her erasure
-- finds it. An employee erased before the record is left out, as for the recipients. Records
-- without skipped employees (and those written before they existed) leave skp absent.
local function skipped_add(mid, mt, i)
    local n = tonumber(ARGV[i])
    if n == 0 then
        return
    end
    local skp = {}
    for j = i + 1, i + 2 * n, 2 do
        local eid = ARGV[j]
        if not erased(eid) then
            skp[#skp + 1] = skip_json(eid, ARGV[j + 1])
            call('ZADD', P .. 'e:' .. eid .. ':skp', mt, mid)
        end
    end
    call('HSET', P .. 'm:' .. mid, 'skp', '[' .. table.concat(skp, ',') .. ']')
end

-- sel_emps without the employees erased before this record: erasure scrubs the messages it
-- finds (scrub_selector), this one came later. Rewritten only when someone was dropped, so
-- the stored text is the same in either order.
local function sel_emps_less_erased(mk, raw)
    if not ANY_ERASED or not raw or raw == '[]' then
        return
    end
    local keep, dropped = {}, false
    for _, e in ipairs(cjson.decode(raw)) do
        if erased(e) then
            dropped = true
        else
            keep[#keep + 1] = cjson.encode(e)
        end
    end
    if dropped then
        call('HSET', mk, 'sel_emps', '[' .. table.concat(keep, ',') .. ']')
    end
end

-- The index of the first recipient: past the selector's departments, vehicles and tags and
-- the skipped pairs, which follow the key/value pairs ending before i.
local function recipients_at(i)
    for _ = 1, 3 do
        i = i + tonumber(ARGV[i]) + 1
    end
    return i + 2 * tonumber(ARGV[i]) + 1
end

-- The one employee the record's audience resolved to (every recipient the same ID), who
-- becomes the item's eid like an incoming item's sender, so the view names her. nil for a
-- group, for nobody, and when she was erased before this record; her erasure after it
-- removes eid (employee_erase.lua). Decided on the record alone, not on who is left after
-- erasures: a message to two of whom one is erased names nobody, in either order.
local function sole_recipient(r0)
    if r0 > Z then
        return nil
    end
    local only = ARGV[r0]
    for j = r0 + 1, Z do
        if ARGV[j] ~= only then
            return nil
        end
    end
    if erased(only) then
        return nil
    end
    return only
end

local function apply_message()
    local mid, created = ARGV[A], tonumber(ARGV[A + 1])
    local mk = P .. 'm:' .. mid
    if call('HGET', mk, 'msg') then
        return -- the same message record again (a producer retry)
    end
    local flat, f, i = read_kv(A + 3, tonumber(ARGV[A + 2]))
    local mt = string.format('%d', ulid_ms(mid)) -- a string: formatted once, not per ZADD
    local only = sole_recipient(recipients_at(i))
    if only then
        flat[#flat + 1] = 'eid' -- in the same HSET: no command more
        flat[#flat + 1] = only
    end
    call('HSET', mk, 'msg', '1', 'dir', 'out', 'id', mid, 'at', mt, unpack(flat))
    sel_emps_less_erased(mk, f.sel_emps)
    local px = call('HGETALL', P .. 'crx:' .. mid)
    for k = 1, #px, 2 do
        credit_now(mid, tonumber(px[k + 1]))
    end
    if #px > 0 then
        call('DEL', P .. 'crx:' .. mid)
    end
    local cat = effective_cat(mid, f.cat)
    if cat ~= f.cat then
        call('HSET', mk, 'cat', cat) -- a dispatcher changed it before the message arrived
    end
    call('SADD', P .. 'cats', cat)
    ixadd(mid, mt, cat, 'all')
    ixadd(mid, mt, cat, 'dir', 'out')
    ixadd(mid, mt, cat, 'kind', f.kind)
    ixadd(mid, mt, cat, 'disp', f.disp)
    -- Recipients share their department, vehicle and tags with the selector and each other
    -- (a depot's 40 drivers): each index is written once per message, not once per recipient.
    local indexed = {}
    local ndeps = tonumber(ARGV[i])
    for j = i + 1, i + ndeps do
        ixadd(mid, mt, cat, 'dep', ARGV[j])
        indexed['dep:' .. ARGV[j]] = true
    end
    i = i + ndeps + 1
    local nveh = tonumber(ARGV[i])
    for j = i + 1, i + nveh do
        ixadd(mid, mt, cat, 'veh', ARGV[j])
        indexed['veh:' .. ARGV[j]] = true
    end
    i = i + nveh + 1
    local ntag = tonumber(ARGV[i])
    for j = i + 1, i + ntag do
        ixadd(mid, mt, cat, 'tag', ARGV[j])
        indexed['tag:' .. ARGV[j]] = true
    end
    i = i + ntag + 1
    skipped_add(mid, mt, i)
    i = i + 2 * tonumber(ARGV[i]) + 1
    local m = load_msg(mid) -- once for all recipients: merge_after keeps its counts current
    local nerased = 0
    for j = i, Z do
        local eid = ARGV[j]
        if erased(eid) then
            nerased = nerased + 1
        else
            local old = merge_after(mid, eid, {q = created}, m)
            ixadd(mid, mt, cat, 'emp', eid)
            for _, d in ipairs(emp_dims(eid)) do
                local k = d[1] .. ':' .. d[2]
                if not indexed[k] then
                    indexed[k] = true
                    ixadd(mid, mt, cat, d[1], d[2])
                end
            end
            out_listed(eid, mid, old)
        end
    end
    if nerased > 0 then
        audience_less(mid, nerased) -- as if the erasure came after this record
    end
    -- credits of sends whose outcome came before the message
    local all = call('HGETALL', P .. 'r:' .. mid)
    for k = 1, #all, 2 do
        if string.find(all[k + 1], '"s":', 1, true) and not string.find(all[k + 1], '"cr":', 1, true) then
            merge_after(mid, all[k], {})
        end
    end
    status_full(mid)
    ann_fold(mid)
    ev_add('message', mid)
end
