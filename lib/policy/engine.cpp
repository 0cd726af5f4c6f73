// Loading policy files and calling their hooks in order, switching off any file that fails.
#include "policy/engine.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include "base/error.hpp"
#include "policy/lua_state.hpp"
#include "policy/tn_api.hpp"

namespace tn::policy {

namespace {
// A policy is a small script; anything larger is a mistake (a log file passed as --policy).
constexpr std::size_t max_policy_bytes = 1u << 20;
// An on_tick interval: at least 10 ms so a typo cannot turn the supervisor into a busy loop.
constexpr double min_tick_s = 0.01, default_tick_s = 5.0, max_delay_s = 86400.0;
}  // namespace

class Policy {
public:
    Policy(std::string name, Limits limits) : name_(std::move(name)), L_(limits) {}
    const std::string& name() const { return name_; }
    LuaState& lua() { return L_; }
    lua_State* L() const { return L_.get(); }

    // Pushes the global hook `hook` and returns true when it is a function (else pushes nothing).
    bool push_hook(const char* hook) {
        if (lua_getglobal(L(), hook) == LUA_TFUNCTION) return true;
        lua_pop(L(), 1);
        return false;
    }
    bool has_hook(const char* hook) {
        bool yes = push_hook(hook);
        if (yes) lua_pop(L(), 1);
        return yes;
    }

    bool enabled = true;
    int child_ref = LUA_NOREF;
    std::optional<double> tick;  // seconds, when the file defines on_tick
    std::optional<Clock::time_point> next_tick;
    bool lines = false;

private:
    std::string name_;
    LuaState L_;
};

Engine::Engine(EngineSettings settings, Sink sink) : settings_(std::move(settings)), sink_(std::move(sink)) {}
Engine::~Engine() = default;

void Engine::fail(Policy& p, const std::string& what, const std::string& error) {
    p.enabled = false;
    emit(log::Level::error, "policy " + what + " failed: " + error + "; " + p.name() +
                                " is switched off and the default policy takes over");
}

bool Engine::load_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(ExitCode::config, "cannot read policy " + file.string() + ": no such file or not readable");
    std::string text;
    text.resize(max_policy_bytes + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_policy_bytes)
        throw Error(ExitCode::config, "policy " + file.string() + " is larger than 1 MiB; is it really a Lua file?");
    return load_string("@" + file.string(), text);
}

bool Engine::load_string(const std::string& chunkname, std::string_view source) {
    std::string display = chunkname;
    if (!display.empty() && (display[0] == '@' || display[0] == '=')) display.erase(0, 1);
    std::string lua_name = (!chunkname.empty() && (chunkname[0] == '@' || chunkname[0] == '='))
                               ? chunkname : "=" + chunkname;
    auto p = std::make_unique<Policy>(display, Limits{settings_.instructions, settings_.memory});
    lua_State* L = p->L();
    install_api(L, *this);
    p->child_ref = make_child(L, *this);
    // Text only: a precompiled chunk can crash the VM.
    if (luaL_loadbufferx(L, source.data(), source.size(), lua_name.c_str(), "t") != LUA_OK) {
        std::string err = lua_tostring(L, -1) != nullptr ? lua_tostring(L, -1) : "unknown error";
        lua_pop(L, 1);
        fail(*p, "load", err);
        return false;
    }
    if (std::string err = pcall(p->lua(), 0, 0); !err.empty()) {
        fail(*p, "load", err);
        return false;
    }
    return add(std::move(p), source);
}

bool Engine::add(std::unique_ptr<Policy> p, std::string_view) {
    lua_State* L = p->L();
    if (p->has_hook("on_tick")) {
        double t = default_tick_s;
        if (lua_getglobal(L, "tick") == LUA_TNUMBER) t = lua_tonumber(L, -1);
        else if (!lua_isnil(L, -1)) {
            lua_pop(L, 1);
            fail(*p, "load", p->name() + ": `tick` must be a number of seconds");
            return false;
        }
        lua_pop(L, 1);
        if (!(t >= min_tick_s) || !std::isfinite(t)) t = min_tick_s;
        p->tick = t;
    }
    p->lines = p->has_hook("on_line");
    policies_.push_back(std::move(p));
    return true;
}

void Engine::on_start(const ChildInfo& child) {
    for (auto& p : policies_) {
        if (!p->enabled || !p->push_hook("on_start")) continue;
        push_child(p->L(), p->child_ref, child);
        if (auto err = pcall(p->lua(), 1, 0); !err.empty()) fail(*p, "on_start", err);
    }
}

namespace {
void push_status(lua_State* L, const ExitInfo& s) {
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, s.code);
    lua_setfield(L, -2, "code");
    if (s.signaled) lua_pushinteger(L, s.signal);
    else lua_pushnil(L);
    lua_setfield(L, -2, "signal");
    lua_pushboolean(L, s.signaled);
    lua_setfield(L, -2, "signaled");
    lua_pushstring(L, s.text.c_str());
    lua_setfield(L, -2, "text");
    lua_pushnumber(L, s.runtime);
    lua_setfield(L, -2, "runtime");
    lua_pushboolean(L, s.requested);
    lua_setfield(L, -2, "requested");
}

void push_decision(lua_State* L, const Decision& d) {
    lua_createtable(L, 0, 2);
    lua_pushboolean(L, d.restart);
    lua_setfield(L, -2, "restart");
    lua_pushnumber(L, d.delay);
    lua_setfield(L, -2, "delay");
}

// Reads on_exit's return value over `d`; an error message when it is malformed.
std::string read_decision(lua_State* L, Decision& d) {
    if (lua_isnil(L, -1)) return {};
    if (!lua_istable(L, -1)) return std::string("on_exit returned a ") + luaL_typename(L, -1) + ", not a table or nil";
    Decision out = d;
    int t = lua_getfield(L, -1, "restart");
    if (t == LUA_TBOOLEAN) out.restart = lua_toboolean(L, -1) != 0;
    else if (t != LUA_TNIL) return "on_exit: `restart` must be true or false";
    lua_pop(L, 1);
    t = lua_getfield(L, -1, "delay");
    if (t == LUA_TNUMBER) {
        double v = lua_tonumber(L, -1);
        if (!std::isfinite(v) || v < 0) return "on_exit: `delay` must be a number of seconds >= 0";
        out.delay = std::min(v, max_delay_s);
    } else if (t != LUA_TNIL) {
        return "on_exit: `delay` must be a number of seconds";
    }
    lua_pop(L, 1);
    d = out;
    return {};
}
}  // namespace

Decision Engine::on_exit(const ChildInfo& child, const ExitInfo& status, Decision seed) {
    Decision d = seed;
    for (auto& p : policies_) {
        if (!p->enabled || !p->push_hook("on_exit")) continue;
        lua_State* L = p->L();
        push_child(L, p->child_ref, child);
        push_status(L, status);
        push_decision(L, d);
        if (auto err = pcall(p->lua(), 3, 1); !err.empty()) {
            fail(*p, "on_exit", err);
            continue;
        }
        std::string err = read_decision(L, d);
        lua_settop(L, 0);
        if (!err.empty()) fail(*p, "on_exit", p->name() + ": " + err);
    }
    return d;
}

void Engine::on_line(const ChildInfo& child, std::string_view stream, std::string_view line) {
    for (auto& p : policies_) {
        if (!p->enabled || !p->lines || !p->push_hook("on_line")) continue;
        lua_State* L = p->L();
        push_child(L, p->child_ref, child);
        lua_pushlstring(L, stream.data(), stream.size());
        lua_pushlstring(L, line.data(), line.size());
        if (auto err = pcall(p->lua(), 3, 0); !err.empty()) fail(*p, "on_line", err);
    }
}

void Engine::schedule_ticks(Clock::time_point now) {
    for (auto& p : policies_)
        if (p->tick) p->next_tick = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(*p->tick));
}

void Engine::on_tick(const ChildInfo& child, Clock::time_point now) {
    for (auto& p : policies_) {
        if (!p->enabled || !p->tick || !p->next_tick || *p->next_tick > now) continue;
        auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(*p->tick));
        // Keep the rhythm, but never queue up missed ticks after a long stall.
        p->next_tick = *p->next_tick + interval;
        if (*p->next_tick <= now) p->next_tick = now + interval;
        if (!p->push_hook("on_tick")) continue;
        push_child(p->L(), p->child_ref, child);
        if (auto err = pcall(p->lua(), 1, 0); !err.empty()) fail(*p, "on_tick", err);
    }
}

std::optional<Clock::time_point> Engine::next_tick() const {
    std::optional<Clock::time_point> best;
    for (const auto& p : policies_)
        if (p->enabled && p->next_tick && (!best || *p->next_tick < *best)) best = p->next_tick;
    return best;
}

bool Engine::wants_lines() const {
    for (const auto& p : policies_)
        if (p->enabled && p->lines) return true;
    return false;
}

std::size_t Engine::active() const {
    std::size_t n = 0;
    for (const auto& p : policies_) n += p->enabled ? 1 : 0;
    return n;
}

std::vector<Action> Engine::take_actions() { return std::exchange(actions_, {}); }

}  // namespace tn::policy
