// The options every tool shares (SPEC §2) and the one place argv errors become exit 64.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/log.hpp"

namespace CLI {
class App;
}

namespace tn::cli {

struct CommonOptions {
    int verbose = 0;
    int quiet = 0;
    std::string log_format = "text";
    std::string config;         // -c FILE, empty when not given
    bool check_config = false;  // --check-config: validate and exit
};

// Adds --version, -v/-q, --log-format and, when `with_config`, -c/--config and --check-config.
void add_common_options(CLI::App& app, CommonOptions& opts, bool with_config = true);

// The argv index of the subcommand word: the first word naming a subcommand of `app`, skipping the
// app's own options and their values. `argc` when there is none before `--`.
int subcommand_index(const CLI::App& app, int argc, char* const* argv);

// argv[1..argc) (the program name dropped) with options written before the subcommand that only
// the subcommand knows (`--json`, `-c FILE`) moved to just after it, so that common options work in
// either place: `tool -v --json status` is `tool status -v --json`.
std::vector<std::string> normalize_args(const CLI::App& app, int argc, char* const* argv);

// The usage error for a CLI11 parse failure: an unknown option is named with the closest valid one
// ("unknown option '--jsn' (did you mean '--json'?)"); anything else is CLI11's own text.
std::string usage_message(const CLI::App& app, const std::string& cli11_text);

// Parses argv and runs `body` with a logger built from the common options.
// --help/--version -> 0; a usage error -> message on stderr and 64; a tn::Error -> logged once and its
// code; any other exception -> logged and 70 (an internal error: our bug, not the user's).
// Every subcommand falls through to its parent, so the parent's options work after it as well.
int run(CLI::App& app, CommonOptions& opts, int argc, char** argv,
        const std::function<int(const log::Logger&)>& body);

}  // namespace tn::cli
