// The options every tool shares (SPEC §2) and the one place argv errors become exit 64.
#pragma once

#include <functional>
#include <string>

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

// Parses argv and runs `body` with a logger built from the common options.
// --help/--version -> 0; a usage error -> message on stderr and 64; a tn::Error -> logged once and its
// code; any other exception -> logged and 70 (an internal error: our bug, not the user's).
int run(CLI::App& app, CommonOptions& opts, int argc, char** argv,
        const std::function<int(const log::Logger&)>& body);

}  // namespace tn::cli
