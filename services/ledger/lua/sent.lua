-- lst.sent: ARGV[A] message id, [A+1] employee id, [A+2] "accepted"|"failed", [A+3] at,
-- [A+4] Threema message id, [A+5] Threema ID, [A+6] failure code, [A+7] reason,
-- [A+8] final (1/0), [A+9] HTTP status, [A+10] possible duplicate (1/0), [A+11] attempts.
-- Absent values are empty strings.
-- gateway-out resolved this employee's Threema ID (usually by a phone or e-mail hash): the
-- directory knows only the IDs the ERP gives, so without this, replies from everyone else
-- would never find their sender. An ID the ERP (or an earlier send) already maps stays as it
-- is, and an erased sender ('-') stays erased. Messages that arrived from the ID before we
-- knew it wait in tidp:<id> and are attached now, as employee.lua does for ERP IDs.
local function learn_tid(eid, tid)
    if not tid or not call('SET', P .. 'emp:tid:' .. tid, eid, 'NX') then
        return
    end
    call('SADD', P .. 'emp:ltid:' .. eid, tid)
    local pk = P .. 'tidp:' .. tid
    local ids = call('ZRANGE', pk, 0, -1, 'WITHSCORES')
    for j = 1, #ids, 2 do
        attach(ids[j], tonumber(ids[j + 1]), eid)
    end
    if #ids > 0 then
        call('DEL', pk)
    end
end

local function apply_sent()
    local mid, eid = ARGV[A], ARGV[A + 1]
    if erased(eid) then
        -- receipts for this send are dropped (t: "-"), held ones too
        if ARGV[A + 2] == 'accepted' then
            local tm = ARGV[A + 4]
            local tk = tkey(tm)
            local seen = call('HGET', tk, tm)
            call('HSET', tk, tm, '-')
            call('DEL', P .. 'h:' .. tm)
            rcall('ZREM', P .. 'hx', tm)
            if not seen then
                credit_anonymous(mid, tm, tonumber(ARGV[A + 3]))
            end
        end
        return
    end
    local at = tonumber(ARGV[A + 3])
    local o = {dup = tonumber(ARGV[A + 10]), att = tonumber(ARGV[A + 11])}
    if o.dup == 0 then
        o.dup = nil
    end
    if ARGV[A + 2] == 'accepted' then
        local tm = ARGV[A + 4]
        o.s, o.tm, o.tid = at, tm, arg(A + 5)
        rcall('HSET', tkey(tm), tm, mid .. ' ' .. eid)
        learn_tid(eid, o.tid)
        -- receipts that came before this outcome were held under the Threema message ID
        local hk = P .. 'h:' .. tm
        local held = rcall('HGETALL', hk)
        for i = 1, #held, 2 do
            local step, v = held[i], tonumber(held[i + 1])
            if o[step] == nil or v < o[step] then
                o[step] = v
            end
        end
        if #held > 0 then
            call('DEL', hk)
            rcall('ZREM', P .. 'hx', tm)
        end
    else
        o.ff = tonumber(ARGV[A + 8])
        if o.ff == 1 then
            o.f = at
        else
            o.w = at
        end
        o.fat, o.fc, o.fr, o.fh = at, ARGV[A + 6], ARGV[A + 7], tonumber(ARGV[A + 9])
    end
    if not merge_after(mid, eid, o) then
        note_out(eid, mid) -- a new recipient: the first record about this send
    end
end
