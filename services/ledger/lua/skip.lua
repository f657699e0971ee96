-- A record with no effect (dead-lettered, typing indicator, unknown receipt status): only the
-- watermark advances, so a restart does not dead-letter it again.
local function apply_skip()
end
