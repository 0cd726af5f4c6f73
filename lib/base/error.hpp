// tn::Error: the one error type lib/ throws; it carries the exit code the tool should end with.
#pragma once

#include <stdexcept>
#include <string>

#include "base/exit_code.hpp"

namespace tn {

// Library code throws; tools catch once in main, log the message and exit with code().
class Error : public std::runtime_error {
public:
    Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    ExitCode code() const { return code_; }

private:
    ExitCode code_;
};

// A syntax error in a user-supplied string (address, spec, duration). The caller decides whether it
// is a usage error (command line, 64) or a config error (78), since only it knows where it came from.
class ParseError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

}  // namespace tn
