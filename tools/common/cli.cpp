// Common CLI setup and error-to-exit-code mapping for every tool.
#include "common/cli.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>

#include "base/error.hpp"
#include "base/strings.hpp"

namespace tn::cli {

namespace {

// The option `word` ("--json", "--log-format=json", "-c") names in `app`, or null.
const CLI::Option* find_option(const CLI::App& app, const std::string& word) {
    if (word.size() < 2 || word[0] != '-' || word == "--") return nullptr;
    std::string name = word.substr(0, word.find('='));
    if (name[1] != '-' && name.size() > 2) name = name.substr(0, 2);  // -vv, -cFILE
    return app.get_option_no_throw(name);
}

// Does `word` leave the next argv word to the option as its value?
bool takes_next(const CLI::Option* opt, const std::string& word) {
    if (opt == nullptr || opt->get_items_expected_min() == 0) return false;  // a flag
    if (word.find('=') != std::string::npos) return false;           // --opt=value
    return !(word[1] != '-' && word.size() > 2);                     // -cFILE
}

const CLI::App* find_subcommand(const CLI::App& app, const std::string& word) {
    auto found = app.get_subcommands([&](const CLI::App* s) { return !s->get_name().empty() && s->check_name(word); });
    return found.empty() ? nullptr : found.front();
}

// An option of the app or, written before a subcommand, of one of its subcommands at any depth
// (`-H h1 run`, `--json persist list`).
const CLI::Option* find_option_anywhere(const CLI::App& app, const std::string& word) {
    if (const CLI::Option* own = find_option(app, word)) return own;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
        if (const CLI::Option* theirs = find_option_anywhere(*sub, word)) return theirs;
    return nullptr;
}

// words[i] names a subcommand of `app`, after the app's own options; words.size() when none does.
std::size_t subcommand_at(const CLI::App& app, const std::vector<std::string>& words) {
    for (std::size_t i = 0; i < words.size(); ++i) {
        const std::string& w = words[i];
        if (w == "--") return words.size();
        if (w.size() > 1 && w[0] == '-') {
            if (takes_next(find_option_anywhere(app, w), w)) ++i;
            continue;
        }
        return find_subcommand(app, w) != nullptr ? i : words.size();  // else a positional of the app
    }
    return words.size();
}

std::vector<std::string> normalize(const CLI::App& app, const std::vector<std::string>& words) {
    std::size_t at = subcommand_at(app, words);
    if (at >= words.size()) return words;
    const CLI::App* sub = find_subcommand(app, words[at]);
    std::vector<std::string> head, rest;
    for (std::size_t i = 0; i < at; ++i) {
        const std::string& w = words[i];
        const CLI::Option* own = find_option(app, w);
        const CLI::Option* theirs = own == nullptr && w[0] == '-' ? find_option_anywhere(*sub, w) : nullptr;
        auto& into = theirs != nullptr ? rest : head;
        into.push_back(w);
        if (takes_next(own != nullptr ? own : theirs, w) && i + 1 < at) into.push_back(words[++i]);
    }
    rest.insert(rest.end(), words.begin() + static_cast<std::ptrdiff_t>(at) + 1, words.end());
    head.push_back(words[at]);
    for (auto& w : normalize(*sub, rest)) head.push_back(std::move(w));  // and so on, one level down
    return head;
}

void fall_through_everywhere(CLI::App& app) {
    for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
        sub->fallthrough();
        fall_through_everywhere(*sub);
    }
}

void option_names(const CLI::App& app, std::vector<std::string>& out) {
    for (const CLI::Option* opt : app.get_options()) {
        for (const auto& n : opt->get_lnames()) out.push_back("--" + n);
        for (const auto& n : opt->get_snames()) out.push_back("-" + n);
    }
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) option_names(*sub, out);
}

}  // namespace

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

int subcommand_index(const CLI::App& app, int argc, char* const* argv) {
    std::vector<std::string> words(argv + 1, argv + argc);
    return static_cast<int>(subcommand_at(app, words)) + 1;
}

std::vector<std::string> normalize_args(const CLI::App& app, int argc, char* const* argv) {
    return normalize(app, std::vector<std::string>(argv + 1, argv + argc));
}

std::string usage_message(const CLI::App& app, const std::string& cli11_text) {
    static const std::string marker = "The following argument was not expected: ";
    static const std::string marker_n = "The following arguments were not expected: ";
    std::string rest;
    for (const auto* m : {&marker, &marker_n})
        if (auto at = cli11_text.find(*m); at != std::string::npos) rest = cli11_text.substr(at + m->size());
    std::vector<std::string> unknown;
    for (auto& w : split(rest, ' '))
        if (w.size() > 1 && w[0] == '-') unknown.push_back(w.substr(0, w.find('=')));
    if (unknown.empty()) return cli11_text;
    std::vector<std::string> names;
    option_names(app, names);
    // CLI11 lists extras last to first: name the first one the user wrote.
    const std::string& word = unknown.back();
    if (std::find(names.begin(), names.end(), word) != names.end())
        return "option '" + word + "' does not belong here (see --help of the subcommand)";
    std::string msg = "unknown option '" + word + "'";
    if (auto near = closest_match(word, names)) msg += " (did you mean '" + *near + "'?)";
    return msg;
}

int run(CLI::App& app, CommonOptions& opts, int argc, char** argv,
        const std::function<int(const log::Logger&)>& body) {
    fall_through_everywhere(app);
    try {
        auto args = normalize_args(app, argc, argv);
        std::reverse(args.begin(), args.end());  // CLI11 takes a vector last word first
        app.parse(args);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << app.get_name() << ": " << usage_message(app, e.what()) << "\nTry '" << app.get_name()
                  << " --help'.\n";
        return to_int(ExitCode::usage);
    }
    log::Logger logger(app.get_name(), log::level_from_verbosity(opts.verbose, opts.quiet),
                       *log::parse_format(opts.log_format));
    try {
        return body(logger);
    } catch (const Error& e) {
        // Config errors are one line per problem, FILE:LINE:COL: error: ..., as compilers print them,
        // so editors jump to each; not a log line with the problems joined.
        std::string what = e.what();
        if (e.code() == ExitCode::config && logger.format() == log::Format::text && what.find(": error: ") != std::string::npos) {
            for (const auto& line : split(what, '\n')) std::cerr << escape_controls(line) << "\n";
            std::cerr << std::flush;
        } else {
            logger.error(what);  // one line whatever it holds: a peer's text must not forge log lines
        }
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
