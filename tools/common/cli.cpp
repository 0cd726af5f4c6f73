// Common CLI setup and error-to-exit-code mapping for every tool.
#include "common/cli.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

#include "base/error.hpp"

namespace tn::cli {

void add_common_options(CLI::App& app, CommonOptions& opts, bool with_config) {
    app.set_version_flag("--version", app.get_name() + " " + TN_VERSION, "Print the version and exit");
    app.add_flag("-v,--verbose", opts.verbose, "More log output (repeatable)");
    app.add_flag("-q,--quiet", opts.quiet, "Less log output (repeatable)");
    app.add_option("--log-format", opts.log_format, "Log line format on stderr")
        ->check(CLI::IsMember({"text", "json"}));
    if (with_config) {
        app.add_option("-c,--config", opts.config, "TOML config file");
        app.add_flag("--check-config", opts.check_config, "Validate the config and exit");
    }
}

int run(CLI::App& app, CommonOptions& opts, int argc, char** argv,
        const std::function<int(const log::Logger&)>& body) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << app.get_name() << ": " << e.what() << "\nTry '" << app.get_name() << " --help'.\n";
        return to_int(ExitCode::usage);
    }
    log::Logger logger(app.get_name(), log::level_from_verbosity(opts.verbose, opts.quiet),
                       *log::parse_format(opts.log_format));
    try {
        return body(logger);
    } catch (const Error& e) {
        logger.error(e.what());
        return to_int(e.code());
    } catch (const ParseError& e) {
        logger.error(e.what());
        return to_int(ExitCode::usage);
    } catch (const std::exception& e) {
        logger.error("internal error: ", e.what());
        return 70;
    }
}

}  // namespace tn::cli
