-- lst.inbound message: ARGV[A] event id, [A+1] sender Threema ID, [A+2] received_at,
-- [A+3] kind, [A+4] category rules (see categorize), [A+5] n key/value pairs, then the pairs.
-- Deduplicated by event ID (the Gateway retries callbacks). The sender is mapped to an
-- employee through the directory; an unknown sender's messages wait in tidp:<threema id>
-- until an employee with that Threema ID arrives.
local function apply_inbound()
    local id, from, at, kind = ARGV[A], ARGV[A + 1], tonumber(ARGV[A + 2]), ARGV[A + 3]
    local mk = P .. 'm:' .. id
    if call('EXISTS', mk) == 1 then
        return
    end
    local eid = call('GET', P .. 'emp:tid:' .. from)
    if eid == '-' then
        return -- the sender was erased (GDPR): their later messages are not recorded
    end
    local flat = read_kv(A + 6, tonumber(ARGV[A + 5]))
    call('HSET', mk, 'dir', 'in', 'id', id, 'from', from, 'at', ARGV[A + 2], 'kind', kind,
        unpack(flat))
    if ARGV[A + 4] ~= '' then
        call('HSET', mk, 'rules', ARGV[A + 4])
    end
    ann_fold(id)
    ev_add('message', id)
    if eid then
        attach(id, at, eid)
        return
    end
    local cat = effective_cat(id, categorize(arg(A + 4), nil))
    call('HSET', mk, 'cat', cat)
    index_inbound_base(id, at, cat, kind)
    call('ZADD', P .. 'tidp:' .. from, at, id)
end
