// tn-watch: supervise any command, one instance per name, with Lua policies (SPEC §3).
#include <CLI/CLI.hpp>

#include <iostream>

#include "base/error.hpp"
#include "commands.hpp"
#include "common/cli.hpp"
#include "runner.hpp"

namespace {

void add_run_options(CLI::App* sub, tn::watch::RunOptions& o) {
    sub->add_option("-n,--name", o.name, "Instance name (default: the command's basename)");
    sub->add_option("--policy", o.policies, "Lua policy file, repeatable; they compose in order");
    sub->add_option("--set", o.sets, "KEY=VALUE for policies (tn.opt), repeatable");
    sub->add_option("--grace", o.grace, "Seconds between SIGTERM and SIGKILL on stop (default 1.5)");
    sub->add_option("--backoff-initial", o.backoff_initial, "Default policy: first restart delay, s (default 1)");
    sub->add_option("--backoff-max", o.backoff_max, "Default policy: delay cap, s (default 30)");
    sub->add_option("--stable-after", o.stable_after, "Default policy: a run this long resets the delay, s (default 10)");
    sub->add_option("--log-size", o.log_size, "Rotate the log at this many bytes (default 1048576)");
    sub->add_option("--log-keep", o.log_keep, "Rotated log files kept (default 3)");
    sub->add_option("--instruction-limit", o.instructions, "Lua instructions per hook call (default 10000000)");
    sub->prefix_command();  // everything from the command on belongs to the command
    sub->footer("The command follows the options, optionally after --.");
}

std::vector<std::string> command_of(CLI::App* sub) {
    auto rest = sub->remaining();
    if (!rest.empty() && rest.front() == "--") rest.erase(rest.begin());
    return rest;
}

}  // namespace

int main(int argc, char** argv) {
    tn::cli::CommonOptions common;
    tn::watch::RunOptions run_opts;
    std::string name;
    bool json = false, follow = false;
    double timeout = -1;

    CLI::App app("Supervise a command: restart it per Lua policies, one instance per name.", "tn-watch");
    tn::cli::add_common_options(app, common, false);
    app.require_subcommand(1);
    auto* run = app.add_subcommand("run", "Supervise in the foreground");
    auto* start = app.add_subcommand("start", "Supervise detached; output goes to $STATE/NAME.log");
    auto* ensure = app.add_subcommand("ensure", "Start detached unless NAME already runs; for ~/.bashrc and cron");
    for (auto* s : {run, start, ensure}) add_run_options(s, run_opts);
    auto* stop = app.add_subcommand("stop", "Stop a supervisor and its child's process group");
    stop->add_option("name", name, "Instance name")->required();
    stop->add_option("--timeout", timeout, "Seconds to wait (default: its grace period + 5)");
    auto* status = app.add_subcommand("status", "Show supervisors (exit 1 if NAME is not running)");
    status->add_option("name", name, "Instance name (default: all)");
    status->add_flag("--json", json, "One JSON document");
    auto* logs = app.add_subcommand("logs", "Print a supervisor's log");
    logs->add_option("name", name, "Instance name")->required();
    logs->add_flag("-f,--follow", follow, "Keep printing new lines");

    // Everything after the first "--" is the command, whatever it looks like; CLI11 sees only the rest.
    std::vector<std::string> after_dashes;
    bool dashes = false;
    for (int i = 1; i < argc; ++i) {
        if (std::string_view(argv[i]) == "--") {
            after_dashes.assign(argv + i + 1, argv + argc);
            argc = i;
            dashes = true;
            break;
        }
    }

    return tn::cli::run(app, common, argc, argv, [&](const tn::log::Logger& log) {
        for (auto* s : {run, start, ensure}) {
            if (!s->parsed()) continue;
            run_opts.command = command_of(s);
            if (dashes) {
                if (!run_opts.command.empty()) {
                    std::cerr << "tn-watch: unexpected arguments before --: " << run_opts.command.front()
                              << "\nTry 'tn-watch " << s->get_name() << " --help'.\n";
                    return tn::to_int(tn::ExitCode::usage);
                }
                run_opts.command = after_dashes;
            }
            tn::watch::RunPlan plan;
            try {
                plan = tn::watch::make_plan(run_opts);
            } catch (const tn::ParseError& e) {
                std::cerr << "tn-watch: " << e.what() << "\nTry 'tn-watch " << s->get_name() << " --help'.\n";
                return tn::to_int(tn::ExitCode::usage);
            }
            if (s == run) {
                tn::watch::Ready none;
                return tn::watch::supervise(plan, false, none, log);
            }
            return tn::watch::start_detached(plan, s == ensure, log);
        }
        if (stop->parsed()) return tn::watch::stop(name, timeout, log);
        if (status->parsed())
            return tn::watch::status(status->count("name") ? std::optional<std::string>(name) : std::nullopt, json,
                                     std::cout);
        return tn::watch::logs(name, follow, std::cout);
    });
}
