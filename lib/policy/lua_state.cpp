// The sandbox: which standard libraries a policy sees, the memory cap and the instruction budget.
#include "policy/lua_state.hpp"

#include <cstdlib>
#include <string>

#include "base/error.hpp"

namespace tn::policy {

namespace {

// Instructions between two budget checks: small enough to stop a loop quickly, large enough to cost
// nothing measurable.
constexpr int hook_every = 1000;

void* capped_alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize) {
    auto* g = static_cast<LuaState::Guard*>(ud);
    if (ptr == nullptr) osize = 0;  // osize is a type tag when ptr is null
    if (nsize == 0) {
        std::free(ptr);
        g->used -= osize;
        return nullptr;
    }
    if (nsize > osize && g->used + (nsize - osize) > g->cap) return nullptr;  // Lua raises "not enough memory"
    void* p = std::realloc(ptr, nsize);
    if (p != nullptr) g->used = g->used - osize + nsize;
    return p;
}

LuaState::Guard* guard_of(lua_State* L) { return *static_cast<LuaState::Guard**>(lua_getextraspace(L)); }

void count_hook(lua_State* L, lua_Debug*) {
    LuaState::Guard* g = guard_of(L);
    g->left -= hook_every;
    if (g->left >= 0) return;
    // Name the line that was running, not the caller: that is where the loop is.
    lua_Debug ar{};
    std::string where;
    if (lua_getstack(L, 0, &ar) != 0 && lua_getinfo(L, "Sl", &ar) != 0 && ar.currentline > 0)
        where = std::string(ar.short_src) + ":" + std::to_string(ar.currentline) + ": ";
    g->left = g->budget;  // so the error handler itself may run
    lua_pushstring(L, (where + "instruction limit exceeded (" + std::to_string(g->budget) +
                       " instructions; an endless loop?)").c_str());
    lua_error(L);
}

int lua_panic_handler(lua_State* L) {
    // Only reached for errors outside any pcall, which the engine never does; fail loudly, not abort().
    const char* msg = lua_tostring(L, -1);
    throw Error(ExitCode::data, std::string("Lua panic: ") + (msg != nullptr ? msg : "unknown error"));
}

void open_sandboxed_libs(lua_State* L) {
    const luaL_Reg libs[] = {
        {LUA_GNAME, luaopen_base},         {LUA_TABLIBNAME, luaopen_table}, {LUA_STRLIBNAME, luaopen_string},
        {LUA_MATHLIBNAME, luaopen_math},   {LUA_UTF8LIBNAME, luaopen_utf8}, {LUA_COLIBNAME, luaopen_coroutine},
        {LUA_OSLIBNAME, luaopen_os},
    };
    for (const auto& lib : libs) {
        luaL_requiref(L, lib.name, lib.func, 1);
        lua_pop(L, 1);
    }
    // Base functions that reach the file system or load bytecode (which can crash the VM).
    for (const char* name : {"dofile", "loadfile", "load"}) {
        lua_pushnil(L);
        lua_setglobal(L, name);
    }
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    // os keeps only the clock functions: no execute, exit, remove, rename, tmpname, getenv, setlocale.
    lua_newtable(L);
    lua_getglobal(L, LUA_OSLIBNAME);
    for (const char* name : {"time", "clock", "date", "difftime"}) {
        lua_getfield(L, -1, name);
        lua_setfield(L, -3, name);
    }
    lua_pop(L, 1);
    lua_setglobal(L, LUA_OSLIBNAME);
    // io, package (require), debug are never opened.
}

}  // namespace

LuaState::LuaState(Limits limits) : guard_(std::make_unique<Guard>()) {
    guard_->cap = limits.memory;
    guard_->budget = limits.instructions;
    guard_->left = limits.instructions;
    lua_State* L = lua_newstate(capped_alloc, guard_.get());
    if (L == nullptr) throw Error(ExitCode::io, "cannot create a Lua state (out of memory)");
    state_.reset(L);
    *static_cast<Guard**>(lua_getextraspace(L)) = guard_.get();
    lua_atpanic(L, lua_panic_handler);
    open_sandboxed_libs(L);
    lua_sethook(L, count_hook, LUA_MASKCOUNT, hook_every);
}

void LuaState::arm() { guard_->left = guard_->budget; }

std::string pcall(LuaState& L, int nargs, int nresults) {
    L.arm();
    lua_State* s = L.get();
    if (lua_pcall(s, nargs, nresults, 0) == LUA_OK) return {};
    std::string msg;
    if (const char* m = lua_tostring(s, -1)) msg = m;
    else msg = std::string("error object is a ") + luaL_typename(s, -1) + " value";
    lua_pop(s, 1);
    return msg;
}

}  // namespace tn::policy
