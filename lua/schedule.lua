-- schedule.lua: restart the child every `every` seconds (a periodic refresh, like a cron restart).
--
-- A child that has run for `every` seconds is restarted through the usual stop sequence (SIGTERM to
-- the group, SIGKILL after --grace); the clock restarts with each new child, whatever ended the last
-- one. The check runs `every`/4 seconds apart (at most once a minute, at least every 50 ms), so a
-- restart comes at most a quarter interval late.
--
-- Options (--set KEY=VALUE): every (3600 s).
--
--   tn-watch ensure --name vnet --policy schedule.lua --set every=86400 -- tn-vnet -c vnet.toml

local every = tn.opt("every", 3600)
if every <= 0 then error("schedule.lua: every must be > 0 seconds") end
tick = math.max(0.05, math.min(every / 4, 60))

function on_tick(child)
    if child.running and child.uptime >= every then
        tn.log("info", string.format("schedule.lua: restarting after %.0f s", child.uptime))
        child:restart()
    end
end
