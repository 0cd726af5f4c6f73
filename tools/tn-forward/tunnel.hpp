// Tunnel: one SSH session carrying every forward, kept alive and reconnected until told to stop.
#pragma once

#include <functional>
#include <optional>

#include "base/log.hpp"
#include "base/signals.hpp"
#include "control.hpp"
#include "events.hpp"
#include "settings.hpp"

namespace tn::forward {

// Runs until SIGINT/SIGTERM (exit 0), a fatal error (auth/host key 77, config 78, local bind 74, thrown
// as tn::Error), or with `once` the first loss (75). `reload` re-reads the settings on SIGHUP.
// `control`, when given, is served (`tn-forward status`) from the same loop. `signals` must exist before
// any thread starts (every thread then blocks them) and before the control socket opens (a SIGHUP sent
// as soon as it answers is then a reload, not the default action's death).
int run_tunnel(const Settings& settings, const log::Logger& log, const EventSink& events,
               const std::function<Settings()>& reload, ControlServer* control, SignalFd& signals);

}  // namespace tn::forward
