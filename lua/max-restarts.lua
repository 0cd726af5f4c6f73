-- max-restarts.lua: give up after too many exits in a time window.
--
-- When the child has exited more than max_restarts times within restart_window seconds, the
-- supervisor stops restarting it and ends, with the child's last exit code (128+N for signal N).
-- restart_window = 0 counts every exit since the supervisor started. Put it after the policies that
-- pick the delay: it only turns their "restart" into "no restart".
--
-- Options (--set KEY=VALUE): max_restarts (5), restart_window (60 s).
--
--   tn-watch run --policy max-restarts.lua --set max_restarts=3 -- ./flaky-job

local max_restarts = tn.opt("max_restarts", 5)
local window = tn.opt("restart_window", 60)

local exits = {}  -- monotonic times of recent exits

function on_exit(child, status, decision)
    local now = tn.monotonic()
    exits[#exits + 1] = now
    if window > 0 then
        while #exits > 0 and now - exits[1] > window do table.remove(exits, 1) end
    end
    if #exits > max_restarts then
        tn.log("error", string.format("max-restarts.lua: %d exits within %s s (last: %s), giving up",
            #exits, window > 0 and tostring(window) or "the supervisor's life", status.text))
        return { restart = false }
    end
end
