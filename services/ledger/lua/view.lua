-- lst.views: ARGV[A] view id, [A+1] kind (put | delete), [A+2] owner, [A+3] the owner's
-- department ('' none), [A+4] at (ms), then for put: [A+5] name, [A+6] shared (1/0),
-- [A+7] the filter (JSON object of the timeline query parameters the record sets, tag and
-- depot included; stored as is, the view-api parses it), [A+8] hidden (JSON array).
--
-- view:<id> (hash) the view; a delete leaves {owner, at, deleted=1} so that an older put
-- cannot bring it back. views:u:<owner> (set) the owner's views, views:d:<department> (set)
-- the views shared in a department. A view keeps its owner: records naming another owner
-- are ignored. The records of one view share a partition (key view id), so a later record
-- with the same `at` wins.
local function apply_view()
    local vid, kind, owner, dep, at = ARGV[A], ARGV[A + 1], ARGV[A + 2], arg(A + 3),
        tonumber(ARGV[A + 4])
    local vk = P .. 'view:' .. vid
    local cur = call('HMGET', vk, 'at', 'owner', 'dep')
    if cur[1] and (tonumber(cur[1]) > at or cur[2] ~= owner) then
        return
    end
    if cur[2] then
        call('SREM', P .. 'views:u:' .. cur[2], vid)
    end
    if cur[3] then
        call('SREM', P .. 'views:d:' .. cur[3], vid)
    end
    call('DEL', vk)
    if kind == 'delete' then
        call('HSET', vk, 'id', vid, 'owner', owner, 'at', at, 'deleted', '1')
        return
    end
    call('HSET', vk, 'id', vid, 'owner', owner, 'at', at, 'name', ARGV[A + 5], 'shared',
        ARGV[A + 6], 'filter', ARGV[A + 7], 'hidden', ARGV[A + 8])
    call('SADD', P .. 'views:u:' .. owner, vid)
    if dep then
        call('HSET', vk, 'dep', dep)
        if ARGV[A + 6] == '1' then
            call('SADD', P .. 'views:d:' .. dep, vid)
        end
    end
end
