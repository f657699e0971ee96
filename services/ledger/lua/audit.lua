-- lst.audit (GDPR audit log): ARGV[A] event id, ARGV[A + 1] time (ms), ARGV[A + 2] employee
-- id, ARGV[A + 3] the record as JSON. Stored once per event id (a replay writes the same):
-- aud (zset by time: the admins' log), aud:emp:<eid> (that employee's accesses, for the
-- export), aud:d (hash event id -> JSON). An erasure leaves them: the log of who accessed and
-- erased an employee's data is the controller's own accountability record.
local function apply_audit()
    local id, at, eid = ARGV[A], tonumber(ARGV[A + 1]), ARGV[A + 2]
    call('HSET', P .. 'aud:d', id, ARGV[A + 3])
    call('ZADD', P .. 'aud', at, id)
    call('ZADD', P .. 'aud:emp:' .. eid, at, id)
end
