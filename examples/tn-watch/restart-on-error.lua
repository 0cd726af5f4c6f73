-- restart-on-error.lua: an example policy combining output matching with its own counter.
-- Restarts the child when it logs "connection lost", and gives up after five such restarts.
-- Run: tn-watch run --policy restart-on-error.lua -- tn-forward --once -R 6000:127.0.0.1:22 host

local restarts_for_loss = 0

function on_line(child, stream, line)
    if line:find("connection lost", 1, true) then
        restarts_for_loss = restarts_for_loss + 1
        tn.log("warn", "connection lost (" .. restarts_for_loss .. "), restarting " .. child.name)
        child:restart()
    end
end

function on_exit(child, status, decision)
    if restarts_for_loss >= 5 then
        tn.log("error", "lost the connection five times, giving up")
        return { restart = false }
    end
    return nil  -- keep what the earlier policies (backoff) decided
end
