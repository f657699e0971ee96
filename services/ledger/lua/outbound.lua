-- lst.outbound: ARGV[A] message id, [A+1] employee id, [A+2] created_at.
-- The recipient becomes "queued" (or keeps a higher state).
local function apply_outbound()
    local mid, eid, at = ARGV[A], ARGV[A + 1], tonumber(ARGV[A + 2])
    if erased(eid) then
        return
    end
    if not merge_after(mid, eid, {q = at}) then
        note_out(eid, mid) -- a new recipient: the first record about this send
    end
end
