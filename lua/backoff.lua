-- backoff.lua: wait longer before each restart after a quick failure (the default policy's delay).
--
-- It only picks the delay: whether to restart at all stays what the policies before it and the
-- default decided (the default does not restart after exit 0, 77 or 78).
-- The delay starts at backoff_initial seconds and is multiplied by backoff_factor after every run
-- shorter than stable_after seconds, up to backoff_max. A run that lasted stable_after seconds or
-- more resets the delay. tn-watch has the same policy built in (tuned with --backoff-initial,
-- --backoff-max, --stable-after); this file is the same logic in Lua, to copy and change.
--
-- Options (--set KEY=VALUE): backoff_initial (1), backoff_max (30), backoff_factor (2),
-- stable_after (10).
--
--   tn-watch run --policy backoff.lua --set backoff_max=60 -- tn-forward -R 6000:localhost:22 host

local initial = tn.opt("backoff_initial", 1)
local max = tn.opt("backoff_max", 30)
local factor = tn.opt("backoff_factor", 2)
local stable_after = tn.opt("stable_after", 10)

local failures = 0  -- consecutive short runs; kept between calls

function on_exit(child, status, decision)
    if status.runtime >= stable_after then failures = 0 end
    local delay = math.min(initial * factor ^ failures, max)
    if delay < max then failures = failures + 1 end
    return { restart = decision.restart, delay = delay }
end
