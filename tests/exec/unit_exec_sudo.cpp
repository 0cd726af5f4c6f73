// Unit tests for --sudo's prompt gate: markers found across packet boundaries, the password sent
// once and only at the prompt, a second prompt refused, the command's stderr passed on untouched.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "sudo.hpp"

using namespace tn;
using namespace tn::exec;

namespace {
const std::string token = "0123456789abcdef0123456789abcdef";
const std::string prompt = "[tn-exec-sudo " + token + " prompt]";
const std::string started = "[tn-exec-sudo " + token + " started]\n";

struct Feed {
    SudoGate gate;
    std::string err, sent;
    int asked = 0;
    bool closed = false;
    explicit Feed(bool with_password = true)
        : gate(token, with_password ? SudoGate::PasswordFn([this] {
                   ++asked;
                   return std::make_shared<const Secret>("pw");
               })
                                    : SudoGate::PasswordFn()) {}
    void operator()(const std::string& chunk) {
        auto step = gate.on_stderr(chunk, [this](std::string_view d) { sent.append(d); });
        err += step.err;
        closed |= step.close_stdin;
    }
};
}  // namespace

TEST_CASE("sudo_command wraps the command and never carries the password") {
    auto c = sudo_command("cd /tmp || exit 1; id -u", "", token, true);
    CHECK(c.rfind("sudo -S -p '" + prompt + "' -- /bin/sh -c ", 0) == 0);
    CHECK(c.find("id -u") != std::string::npos);
    CHECK(sudo_command("id", "bob", token, false).rfind("sudo -n -u bob -- /bin/sh -c ", 0) == 0);
    CHECK(sudo_command("id", "b'ob", token, false).find("-u 'b'\\''ob'") != std::string::npos);
    CHECK(sudo_token().size() == 32);
    CHECK(sudo_token() != sudo_token());
}

TEST_CASE("SudoGate answers the first prompt once and opens on the started marker") {
    Feed f;
    f("sudo: unable to resolve host x\n" + prompt.substr(0, 10));
    CHECK(f.err == "sudo: unable to resolve host x\n");  // the marker's start is held back
    CHECK(f.sent.empty());
    f(prompt.substr(10));
    CHECK(f.sent == "pw\n");
    CHECK(f.asked == 1);
    CHECK_FALSE(f.gate.done());
    // Split in every place: never leaks marker bytes, never opens early.
    for (char c : started.substr(0, started.size() - 1)) f(std::string(1, c));
    CHECK_FALSE(f.gate.done());
    f("\ncommand's own stderr " + prompt);
    CHECK(f.gate.done());
    CHECK(f.err == "sudo: unable to resolve host x\ncommand's own stderr " + prompt);  // after start: untouched
    CHECK(f.sent == "pw\n");
    CHECK_FALSE(f.closed);
    CHECK(f.gate.prompts() == 1);
}

TEST_CASE("SudoGate refuses a second prompt: no second try") {
    Feed f;
    f(prompt);
    f("Sorry, try again.\n" + prompt);
    CHECK(f.sent == "pw\n");
    CHECK(f.closed);
    CHECK(f.err == "Sorry, try again.\n");
    CHECK(f.gate.prompts() == 2);
    CHECK_FALSE(f.gate.started());
    auto fail = sudo_failure(f.gate, 1, "u@h:22", true);
    CHECK(fail.code == 77);
    CHECK(fail.message.find("refused the password") != std::string::npos);
}

TEST_CASE("SudoGate without a password closes stdin at a prompt; failures name the cause") {
    Feed f(false);
    f(prompt);
    CHECK(f.closed);
    CHECK(f.sent.empty());
    Feed g(false);
    g("sudo: a password is required\n");
    CHECK(g.err == "sudo: a password is required\n");
    auto fail = sudo_failure(g.gate, 1, "u@h:22", false);
    CHECK(fail.code == 77);
    CHECK(fail.message.find("--password-stdin") != std::string::npos);
    CHECK(sudo_failure(g.gate, 127, "u@h:22", false).code == 255);
    Feed h;
    h("[tn-exec-sudo ");  // an unfinished marker at the end is given back by flush
    CHECK(h.err.empty());
    CHECK(h.gate.flush() == "[tn-exec-sudo ");
}
