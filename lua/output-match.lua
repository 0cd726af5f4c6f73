-- output-match.lua: restart (or stop, or signal) the child when a line of its output matches.
--
-- Each line the child writes is tested against `pattern`, a Lua pattern (or a plain substring with
-- match_plain=true). On a match the child is restarted through the usual stop sequence (SIGTERM to the
-- group, SIGKILL after --grace). One match per child: further matching lines of the same child are
-- ignored until it has been replaced.
--
-- Options (--set KEY=VALUE): pattern (required), match_stream (stdout, stderr or both; default both),
-- match_plain (false), match_action (restart, stop or a signal name such as HUP; default restart).
--
--   tn-watch run --policy output-match.lua --set 'pattern=remote port forwarding failed' -- ssh -N -R ...

local pattern = tn.opt("pattern", "")
if pattern == "" then error("output-match.lua needs --set pattern=LUA_PATTERN") end
local stream = tn.opt("match_stream", "both")
local plain = tn.opt("match_plain", false)
local action = tn.opt("match_action", "restart")

local handled_pid = nil

function on_line(child, s, line)
    if stream ~= "both" and s ~= stream then return end
    if child.pid == nil or child.pid == handled_pid then return end
    if not line:find(pattern, 1, plain) then return end
    handled_pid = child.pid
    tn.log("warn", "output-match.lua: " .. s .. " matched '" .. pattern .. "': " .. action)
    if action == "restart" then
        child:restart()
    elseif action == "stop" then
        child:stop()
    else
        child:kill(action)
        handled_pid = nil  -- a signal does not replace the child: let it match again
    end
end
