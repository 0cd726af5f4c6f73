-- network.lua: run the child only while a TCP probe passes (a network-check loop).
--
-- Every probe_interval seconds tn-watch connects to probe=HOST:PORT. After probe_failures failed
-- probes in a row the child is stopped (SIGTERM to its group, SIGKILL after --grace) and held; when a
-- probe passes again it is started at once. The first probe runs when the child first starts, so a
-- child is not started into a dead network for long. Exits while the network is up are left to the
-- policies before this one (the default backoff).
--
-- Options (--set KEY=VALUE): probe (required, HOST:PORT or [V6]:PORT), probe_interval (5 s),
-- probe_timeout_ms (1000), probe_failures (1).
--
--   tn-watch ensure --name tunnel --policy network.lua --set probe=example.org:22 -- tn-forward --once ...

local target = tn.opt("probe", "")
local host, port = target:match("^%[([^%]]+)%]:(%d+)$")
if not host then host, port = target:match("^([^:]+):(%d+)$") end
if not host then error("network.lua needs --set probe=HOST:PORT (got '" .. target .. "')") end
port = tonumber(port)

tick = tn.opt("probe_interval", 5)
local timeout_ms = tn.opt("probe_timeout_ms", 1000)
local failures_needed = tn.opt("probe_failures", 1)

local down = false
local failures = 0

local function probe(child)
    local ok, err = tn.probe_tcp(host, port, timeout_ms)
    if ok then
        failures = 0
        if down then
            down = false
            tn.log("info", "network.lua: " .. target .. " reachable again, starting the child")
            child:start()
        end
    else
        failures = failures + 1
        if not down and failures >= failures_needed then
            down = true
            tn.log("warn", "network.lua: " .. target .. " unreachable (" .. tostring(err) .. "), stopping the child")
            child:stop()
        end
    end
end

function on_start(child)
    probe(child)
end

function on_tick(child)
    probe(child)
end

function on_exit(child, status, decision)
    -- Crashed while the network is down: keep it held until the probe passes.
    if down then child:stop() end
end
