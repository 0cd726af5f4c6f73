// The `tn` API of SPEC §3: probe_tcp, log, now, env, opt, and the child object's methods.
#include "policy/tn_api.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>

#include "base/unique_fd.hpp"

namespace tn::policy {

namespace {

// A probe blocks the supervisor while it runs, so it is capped well below any sane tick.
constexpr int max_probe_ms = 10000;

Engine& engine_of(lua_State* L) { return *static_cast<Engine*>(lua_touserdata(L, lua_upvalueindex(1))); }

void push_closure(lua_State* L, Engine& e, lua_CFunction f, const char* name) {
    lua_pushlightuserdata(L, &e);
    lua_pushcclosure(L, f, 1);
    lua_setfield(L, -2, name);
}

std::optional<log::Level> level_of(std::string_view s) {
    if (s == "debug") return log::Level::debug;
    if (s == "info") return log::Level::info;
    if (s == "warn" || s == "warning") return log::Level::warn;
    if (s == "error") return log::Level::error;
    return std::nullopt;
}

int api_log(lua_State* L) {
    const char* level = luaL_checkstring(L, 1);
    size_t n = 0;
    const char* msg = luaL_tolstring(L, 2, &n);
    auto lv = level_of(level);
    if (!lv) return luaL_error(L, "tn.log: unknown level '%s' (debug, info, warn, error)", level);
    engine_of(L).emit(*lv, std::string(msg, n));
    return 0;
}

int api_print(lua_State* L) {
    std::string line;
    int n = lua_gettop(L);
    for (int i = 1; i <= n; ++i) {
        size_t len = 0;
        const char* s = luaL_tolstring(L, i, &len);
        if (i > 1) line += '\t';
        line.append(s, len);
        lua_pop(L, 1);
    }
    engine_of(L).emit(log::Level::info, line);
    return 0;
}

int api_now(lua_State* L) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch()).count();
    lua_pushnumber(L, static_cast<lua_Number>(ms) / 1000.0);
    return 1;
}

int api_monotonic(lua_State* L) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
    lua_pushnumber(L, static_cast<lua_Number>(ms) / 1000.0);
    return 1;
}

int api_env(lua_State* L) {
    const char* name = luaL_checkstring(L, 1);
    if (auto v = engine_of(L).settings().env(name)) lua_pushlstring(L, v->data(), v->size());
    else lua_pushnil(L);
    return 1;
}

// tn.opt(name, default): the --set value, converted to a number when the default is one.
int api_opt(lua_State* L) {
    const char* name = luaL_checkstring(L, 1);
    const auto& opts = engine_of(L).settings().options;
    auto it = opts.find(name);
    if (it == opts.end()) {
        lua_settop(L, 2);
        return 1;
    }
    if (lua_type(L, 2) == LUA_TNUMBER) {
        lua_pushlstring(L, it->second.data(), it->second.size());
        if (lua_stringtonumber(L, it->second.c_str()) == 0)
            return luaL_error(L, "tn.opt: --set %s=%s is not a number", name, it->second.c_str());
        return 1;
    }
    if (lua_type(L, 2) == LUA_TBOOLEAN) {
        lua_pushboolean(L, it->second == "1" || it->second == "true" || it->second == "yes");
        return 1;
    }
    lua_pushlstring(L, it->second.data(), it->second.size());
    return 1;
}

int api_probe_tcp(lua_State* L) {
    const char* host = luaL_checkstring(L, 1);
    lua_Integer port = luaL_checkinteger(L, 2);
    lua_Integer timeout = luaL_optinteger(L, 3, 1000);
    if (port < 1 || port > 65535) return luaL_error(L, "tn.probe_tcp: port %d out of range", static_cast<int>(port));
    timeout = std::clamp<lua_Integer>(timeout, 1, max_probe_ms);
    std::string err = probe_tcp(host, static_cast<int>(port), static_cast<int>(timeout));
    if (err.empty()) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushboolean(L, 0);
    lua_pushstring(L, err.c_str());
    return 2;
}

int child_signal_arg(lua_State* L, int idx) {
    if (lua_isnoneornil(L, idx)) return SIGTERM;
    if (lua_type(L, idx) == LUA_TNUMBER) {
        lua_Integer n = luaL_checkinteger(L, idx);
        if (n < 1 || n > 64) return luaL_error(L, "child:kill: bad signal %d", static_cast<int>(n));
        return static_cast<int>(n);
    }
    const char* s = luaL_checkstring(L, idx);
    auto sig = parse_signal(s);
    if (!sig) return luaL_error(L, "child:kill: unknown signal '%s'", s);
    return *sig;
}

int child_kill(lua_State* L) {
    luaL_checktype(L, 1, LUA_TTABLE);  // called as child:kill(sig)
    engine_of(L).push_action(Action{Action::Kind::kill, child_signal_arg(L, 2)});
    return 0;
}

template <Action::Kind K> int child_simple(lua_State* L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    engine_of(L).push_action(Action{K, 0});
    return 0;
}

}  // namespace

std::optional<int> parse_signal(std::string_view s) {
    if (s.empty()) return std::nullopt;
    if (s.size() > 3 && s.substr(0, 3) == "SIG") s.remove_prefix(3);
    for (int sig = 1; sig < 32; ++sig) {
        const char* abbrev = sigabbrev_np(sig);
        if (abbrev != nullptr && s == abbrev) return sig;
    }
    int n = 0;
    for (char c : s) {
        if (c < '0' || c > '9' || n > 64) return std::nullopt;
        n = n * 10 + (c - '0');
    }
    if (n < 1 || n > 64) return std::nullopt;
    return n;
}

std::string probe_tcp(const std::string& host, int port, int timeout_ms) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    std::string service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) return gai_strerror(rc);
    std::unique_ptr<addrinfo, void (*)(addrinfo*)> owner(res, ::freeaddrinfo);
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    std::string last = "no address";
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
        if (!fd) {
            last = strerror(errno);
            continue;
        }
        if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) return {};
        if (errno != EINPROGRESS) {
            last = strerror(errno);
            continue;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        pollfd p{fd.get(), POLLOUT, 0};
        int rc = left > 0 ? ::poll(&p, 1, static_cast<int>(left)) : 0;
        if (rc == 0) return "timed out";
        if (rc < 0) return strerror(errno);
        int soerr = 0;
        socklen_t len = sizeof soerr;
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (soerr == 0) return {};
        last = strerror(soerr);
    }
    return last;
}

void install_api(lua_State* L, Engine& e) {
    lua_newtable(L);
    push_closure(L, e, api_log, "log");
    push_closure(L, e, api_now, "now");
    push_closure(L, e, api_monotonic, "monotonic");
    push_closure(L, e, api_env, "env");
    push_closure(L, e, api_opt, "opt");
    push_closure(L, e, api_probe_tcp, "probe_tcp");
    lua_pushstring(L, e.settings().name.c_str());
    lua_setfield(L, -2, "name");
    lua_setglobal(L, "tn");
    lua_pushlightuserdata(L, &e);
    lua_pushcclosure(L, api_print, 1);
    lua_setglobal(L, "print");
}

int make_child(lua_State* L, Engine& e) {
    lua_newtable(L);
    push_closure(L, e, child_kill, "kill");
    push_closure(L, e, child_simple<Action::Kind::restart>, "restart");
    push_closure(L, e, child_simple<Action::Kind::stop>, "stop");
    push_closure(L, e, child_simple<Action::Kind::start>, "start");
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

void push_child(lua_State* L, int ref, const ChildInfo& c) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
    if (c.pid > 0) lua_pushinteger(L, c.pid);
    else lua_pushnil(L);
    lua_setfield(L, -2, "pid");
    lua_pushinteger(L, c.restarts);
    lua_setfield(L, -2, "restarts");
    lua_pushboolean(L, c.running);
    lua_setfield(L, -2, "running");
    lua_pushnumber(L, c.uptime);
    lua_setfield(L, -2, "uptime");
    lua_pushstring(L, c.state.c_str());
    lua_setfield(L, -2, "state");
    lua_pushstring(L, c.name.c_str());
    lua_setfield(L, -2, "name");
}

}  // namespace tn::policy
