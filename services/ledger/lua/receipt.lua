-- lst.inbound receipt: ARGV[A] status (1..4), [A+1] at, [A+2 ..] Threema message IDs.
-- A receipt for an ID whose send outcome is not recorded yet is held under that ID
-- (h:<tmid>, the earliest time per step) and folded in when lst.sent maps it; hx indexes the
-- held IDs by their earliest time, so retention can purge receipts no outcome ever claims.
local STEP_OF = {'d', 'r', 'a', 'x'}
local function apply_receipt()
    local step = STEP_OF[tonumber(ARGV[A])]
    local at = tonumber(ARGV[A + 1])
    if step == nil then
        return
    end
    for i = A + 2, Z do
        local tm = ARGV[i]
        local v = rcall('HGET', tkey(tm), tm)
        if v == '-' then
            -- a send to an erased employee: nothing to record
        elseif v then
            local sp = string.find(v, ' ', 1, true)
            local mid, eid = string.sub(v, 1, sp - 1), string.sub(v, sp + 1)
            if not erased(eid) then
                local o = {}
                o[step] = at
                merge_after(mid, eid, o)
            end
        else
            local hk = P .. 'h:' .. tm
            local cur = tonumber(rcall('HGET', hk, step))
            if cur == nil or at < cur then
                rcall('HSET', hk, step, ARGV[A + 1])
                rcall('ZADD', P .. 'hx', 'LT', ARGV[A + 1], tm)
            end
        end
    end
end

-- Not a record: the follow-up of the receipts the ledger merged in C (services/ledger/native.c),
-- run inside the same MULTI/EXEC after their writes. The read-receipt rule stays here, as a
-- function of the final data: ARGV[A] the number p of first readers, then p pairs (message ID,
-- reader) whose message's recipients still at delivered are new evidence (first_read), then
-- the employees whose rule inputs changed. Not behind a watermark (the epilogue skips the gate).
local function apply_rr()
    local p = tonumber(ARGV[A])
    for j = 0, p - 1 do
        first_read(ARGV[A + 1 + 2 * j], ARGV[A + 2 + 2 * j])
    end
    for j = A + 1 + 2 * p, Z do
        rr_mark(ARGV[j])
    end
end
