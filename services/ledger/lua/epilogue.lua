-- The tail of the ledger's script: applies each event of the batch behind its watermark gate.
-- offset <= watermark: applied before, skip (0). watermark < the previous offset the ledger
-- saw on that partition: Redis lost progress it had acknowledged (a restart from an older
-- AOF/RDB), refuse ("LGAP ...") so the ledger seeks back to the watermark and refills from
-- Kafka. Otherwise apply and advance the watermark (1). An event whose apply fails reports
-- the error text and leaves its watermark, so it is read again (and dead-lettered by the
-- ledger if it fails again). The whole batch is one script, so every event is atomic; one
-- call applies many events so that the setup above is paid once per batch.
local APPLY = {[0] = apply_skip, apply_outbound, apply_sent, apply_receipt, apply_message,
               apply_inbound, apply_employee, apply_employee_erase, apply_audit,
               apply_annotation, apply_view, apply_rr}
local RR_KIND = 11 -- apply_rr: no record, no watermark
local out = {}
local wms, touched = {}, {} -- watermarks read once per batch, written once at the end
local credits = {} -- the credits of the events applied, written once at the end
local i = 3
while i <= #ARGV do
    local kind = tonumber(ARGV[i])
    WM_FIELD, OFF, PREV = ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
    A = i + 5
    Z = i + 4 + tonumber(ARGV[i + 4])
    local wm = wms[WM_FIELD]
    if wm == nil and kind ~= RR_KIND then
        wm = tonumber(call('HGET', P .. 'wm', WM_FIELD) or '-1')
    end
    if kind == RR_KIND then
        apply_rr()
        out[#out + 1] = 1
    elseif OFF <= wm then
        out[#out + 1] = 0
    elseif wm < PREV then
        out[#out + 1] = 'LGAP watermark ' .. wm .. ' behind ' .. PREV
    else
        if next(CREDITS) ~= nil then -- a fresh table only after an event staged credits
            CREDITS = {}
        end
        local ok, err = pcall(APPLY[kind])
        mver_flush() -- also after a failure: what it wrote stays
        if not ok then
            MCACHE = {} -- the event may have stopped between a count's update and its write
        end
        if ok then
            if next(CREDITS) ~= nil then
                credits_fold(credits, CREDITS)
            end
            wms[WM_FIELD] = OFF
            touched[WM_FIELD] = ARGV[i + 2]
            out[#out + 1] = 1
        else
            if type(err) == 'table' then
                err = err.err
            end
            out[#out + 1] = 'ERR ' .. tostring(err)
        end
    end
    i = Z + 1
end
rr_flush()
local flat = {}
for field, off in pairs(touched) do
    flat[#flat + 1] = field
    flat[#flat + 1] = off
end
if #flat > 0 then
    call('HSET', P .. 'wm', unpack(flat))
    -- Refill markers (services/ledger/refill.c) this batch reached go in the same atomic step,
    -- so no reader ever sees a watermark at its target with the marker still there.
    local fields = {}
    for field in pairs(touched) do
        fields[#fields + 1] = field
    end
    local marks = call('HMGET', P .. 'refill', unpack(fields))
    local reached = {}
    for k, field in ipairs(fields) do
        if marks[k] and tonumber(marks[k]) <= wms[field] then
            reached[#reached + 1] = field
        end
    end
    if #reached > 0 then
        call('HDEL', P .. 'refill', unpack(reached))
    end
end
credits_write(credits)
return out
