-- lst.sent: ARGV[A] message id, [A+1] employee id, [A+2] "accepted"|"failed", [A+3] at,
-- [A+4] Threema message id, [A+5] Threema ID, [A+6] failure code, [A+7] reason,
-- [A+8] final (1/0), [A+9] HTTP status, [A+10] possible duplicate (1/0), [A+11] attempts.
-- Absent values are empty strings.
local function apply_sent()
    local mid, eid = ARGV[A], ARGV[A + 1]
    if erased(eid) then
        -- receipts for this send are dropped (t: "-"), held ones too
        if ARGV[A + 2] == 'accepted' then
            local tm = ARGV[A + 4]
            local seen = call('SET', P .. 't:' .. tm, '-', 'GET')
            call('DEL', P .. 'h:' .. tm)
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
        call('SET', P .. 't:' .. tm, mid .. ' ' .. eid)
        -- receipts that came before this outcome were held under the Threema message ID
        local hk = P .. 'h:' .. tm
        local held = call('HGETALL', hk)
        for i = 1, #held, 2 do
            local step, v = held[i], tonumber(held[i + 1])
            if o[step] == nil or v < o[step] then
                o[step] = v
            end
        end
        if #held > 0 then
            call('DEL', hk)
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
