// LuaState: a move-only owner of one sandboxed lua_State with a memory cap and an instruction budget.
// Internal to lib/policy: callers of the engine never include Lua headers.
#pragma once

#include <lua.hpp>

#include <cstddef>
#include <memory>

namespace tn::policy {

struct Limits {
    long long instructions = 10'000'000;  // per hook call (and for the file's top level): ~0.1 s of Lua
    std::size_t memory = 32u << 20;       // bytes per policy file; string.rep and tables hit this
};

class LuaState {
public:
    explicit LuaState(Limits limits);
    LuaState(LuaState&&) noexcept = default;
    LuaState& operator=(LuaState&&) noexcept = default;
    ~LuaState() = default;

    lua_State* get() const { return state_.get(); }
    // Refills the instruction budget; call before every entry into Lua.
    void arm();
    std::size_t memory_used() const { return guard_->used; }

    // The guard lives on the heap so the allocator and the hook keep a stable pointer when we move.
    struct Guard {
        std::size_t used = 0;
        std::size_t cap = 0;
        long long budget = 0;
        long long left = 0;
    };

private:
    struct Closer {
        void operator()(lua_State* L) const { lua_close(L); }
    };
    std::unique_ptr<Guard> guard_;
    std::unique_ptr<lua_State, Closer> state_;  // declared after guard_: closed before the guard goes
};

// Protected call of the function on top of the stack (below its `nargs` arguments) with the budget
// armed. Returns an empty string on success, else the error message (already "file:line: ...").
std::string pcall(LuaState& L, int nargs, int nresults);

}  // namespace tn::policy
