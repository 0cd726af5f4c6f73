// Engine: the tn-watch policies, one sandboxed Lua state per --policy file, composed in order.
// A file that fails (syntax error, runtime error, endless loop, memory cap) is reported with file:line
// and switched off; the decision then comes from the files before it and the built-in default.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/log.hpp"
#include "base/runtime_dir.hpp"

namespace tn::policy {

struct Limits;
class Policy;

using Clock = std::chrono::steady_clock;

// What a hook sees as `child`: refreshed before every call.
struct ChildInfo {
    std::string name;
    int pid = 0;  // 0 when no child runs (child.pid is nil then)
    int restarts = 0;
    bool running = false;
    double uptime = 0;   // seconds the current child has run
    std::string state;   // supervisor state: running, waiting, held, ...
};

// The second argument of on_exit.
struct ExitInfo {
    int code = 0;
    int signal = 0;
    bool signaled = false;
    std::string text;  // "exit 1", "signal 9 (SIGKILL)"
    double runtime = 0;  // seconds the child ran
    bool requested = false;  // stopped because a policy asked for a restart (status.requested)
};

// on_exit's answer; the engine threads it through the policies in order, starting from the default.
struct Decision {
    bool restart = true;
    double delay = 0;  // seconds
};

// What a hook asked the supervisor to do through child:kill/restart/stop/start.
struct Action {
    enum class Kind { kill, restart, stop, start };
    Kind kind;
    int signal = 0;
    bool operator==(const Action&) const = default;
};

// Where policy messages (tn.log, print, and errors) go; the tool decides how they are logged.
using Sink = std::function<void(log::Level, const std::string&)>;

struct EngineSettings {
    long long instructions = 10'000'000;
    std::size_t memory = 32u << 20;
    std::map<std::string, std::string> options;  // --set KEY=VALUE, read by tn.opt
    EnvLookup env = process_env();
    std::string name;  // the supervisor's name, as tn.name
};

class Engine {
public:
    Engine(EngineSettings settings, Sink sink);
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Loads a policy file. Unreadable -> throws tn::Error(config). Syntax or load-time errors are reported
    // through the sink and the file is skipped: returns false.
    bool load_file(const std::filesystem::path& file);
    // The same from a string; `chunkname` names it in messages (tests, built-ins).
    bool load_string(const std::string& chunkname, std::string_view source);

    void on_start(const ChildInfo& child);
    Decision on_exit(const ChildInfo& child, const ExitInfo& status, Decision seed);
    void on_line(const ChildInfo& child, std::string_view stream, std::string_view line);
    // Runs on_tick of every policy whose tick is due at `now`.
    void on_tick(const ChildInfo& child, Clock::time_point now);
    // When on_tick must next run (nullopt: no policy has on_tick, so nothing ever wakes up for it).
    std::optional<Clock::time_point> next_tick() const;
    void schedule_ticks(Clock::time_point now);  // first tick one interval after `now`

    bool wants_lines() const;
    std::size_t active() const;  // policies still switched on
    std::vector<Action> take_actions();

    // Called by the `tn` API (tn_api.cpp); not for the tool.
    const EngineSettings& settings() const { return settings_; }
    void emit(log::Level level, const std::string& msg) const { sink_(level, msg); }
    void push_action(Action a) { actions_.push_back(a); }

private:
    bool add(std::unique_ptr<Policy> p, std::string_view source);
    void fail(Policy& p, const std::string& what, const std::string& error);

    EngineSettings settings_;
    Sink sink_;
    std::vector<std::unique_ptr<Policy>> policies_;
    std::vector<Action> actions_;
};

// Parses a signal given as a number or a name ("TERM", "SIGTERM"); nullopt when unknown.
std::optional<int> parse_signal(std::string_view s);

}  // namespace tn::policy
