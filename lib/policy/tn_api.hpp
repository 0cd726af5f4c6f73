// The `tn` table and the `child` object that policies see (SPEC §3), installed into one Lua state.
#pragma once

#include "policy/engine.hpp"
#include "policy/lua_state.hpp"

namespace tn::policy {

// Sets the global `tn` (probe_tcp, log, now, monotonic, env, opt, name) and redirects `print` to tn.log.
void install_api(lua_State* L, Engine& engine);

// Creates the persistent child object (methods kill, restart, stop, start); returns its registry ref.
int make_child(lua_State* L, Engine& engine);
// Pushes the child object after refreshing its fields from `info`.
void push_child(lua_State* L, int ref, const ChildInfo& info);

// Connects to host:port within timeout_ms; an empty string on success, else why not.
std::string probe_tcp(const std::string& host, int port, int timeout_ms);

}  // namespace tn::policy
