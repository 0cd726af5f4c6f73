// Unit tests for lib/config: parse errors, unknown keys, types, ranges, all problems at once.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "base/error.hpp"
#include "config/document.hpp"

using tn::config::Document;

namespace {
std::string error_of(const std::string& text, void (*check)(const Document&)) {
    try {
        auto d = Document::parse(text, "t.toml");
        check(d);
        d.finish();
    } catch (const tn::Error& e) {
        CHECK(e.code() == tn::ExitCode::config);
        return e.what();
    }
    return "<no error>";
}
void route_schema(const Document& d) {
    auto r = d.root();
    r.allow_only({"route", "group"});
    if (auto t = r.table("route")) {
        t->allow_only({"listen", "tls", "port"});
        t->string("listen");
        t->boolean("tls");
        t->integer("port", 1, 65535);
    }
    for (auto& g : r.tables("group")) {
        g.allow_only({"name", "token"});
        g.require_string("name");
    }
}
}  // namespace

TEST_CASE("a valid config has no diagnostics") {
    CHECK(error_of("[route]\nlisten = \"0.0.0.0:7749\"\ntls = true\n[[group]]\nname = \"a\"\n", route_schema) ==
          "<no error>");
}

TEST_CASE("syntax errors carry FILE:LINE:COL") {
    auto msg = error_of("[route]\nlisten = \n", route_schema);
    CHECK(msg.rfind("t.toml:2:", 0) == 0);
    CHECK(msg.find(": error: ") != std::string::npos);
}

TEST_CASE("unknown keys are errors with a suggestion") {
    CHECK(error_of("[route]\nlisen = \"x\"\n", route_schema) ==
          "t.toml:2:1: error: unknown key \"route.lisen\" (did you mean \"listen\"?)");
    CHECK(error_of("[routes]\n", route_schema) ==
          "t.toml:1:2: error: unknown key \"routes\" (did you mean \"route\"?)");
    CHECK(error_of("[route]\nqqqqqqqqqq = 1\n", route_schema) == "t.toml:2:1: error: unknown key \"route.qqqqqqqqqq\"");
}

TEST_CASE("wrong types and ranges name the key and the line") {
    CHECK(error_of("[route]\ntls = \"yes\"\n", route_schema) ==
          "t.toml:2:7: error: route.tls: expected true or false, got a string");
    CHECK(error_of("[route]\nport = 70000\n", route_schema) ==
          "t.toml:2:8: error: route.port: 70000 is out of range 1..65535");
    CHECK(error_of("route = 3\n", route_schema) == "t.toml:1:9: error: route: expected a table, got an integer");
}

TEST_CASE("every problem is reported at once") {
    auto msg = error_of("[route]\ntls = 1\nlisen = 2\n[[group]]\ntoken = \"x\"\n", route_schema);
    CHECK(msg.find("route.tls: expected true or false") != std::string::npos);
    CHECK(msg.find("unknown key \"route.lisen\"") != std::string::npos);
    CHECK(msg.find("missing required key \"group[0].name\"") != std::string::npos);
}

TEST_CASE("require_table gives the table, or throws with every problem so far") {
    auto doc = Document::parse("[server]\nlisten = \"x\"\n", "t.toml");
    CHECK(doc.require_table("server").string("listen") == "x");
    auto missing = [](const Document& d) {
        d.root().allow_only({"client"});
        d.require_table("client");
    };
    auto msg = error_of("[server]\n", missing);
    CHECK(msg.find("unknown key \"server\"") != std::string::npos);
    CHECK(msg.find("missing [client] table") != std::string::npos);
    CHECK(error_of("client = 3\n", missing) == "t.toml:1:10: error: client: expected a table, got an integer");
}

TEST_CASE("arrays of strings and arrays of tables are checked") {
    auto doc = Document::parse("a = [\"x\", \"y\"]\nb = [1]\n", "t.toml");
    CHECK(doc.root().strings("a") == std::vector<std::string>{"x", "y"});
    CHECK_FALSE(doc.root().strings("b"));
    CHECK(doc.root().tables("a").empty());
    REQUIRE(doc.diagnostics().size() == 2);
    CHECK(doc.diagnostics()[0].str() == "t.toml:2:6: error: b: expected only strings, got an integer");
}

TEST_CASE("load_file reports a missing file and caps the size") {
    CHECK_THROWS_WITH(Document::load_file("/nonexistent/tn.toml"),
                      Catch::Contains("/nonexistent/tn.toml: error: cannot read config"));
    auto p = std::filesystem::temp_directory_path() / "tn-big.toml";
    {
        std::ofstream f(p);
        f << "# " << std::string(2 << 20, 'x') << "\n";
    }
    CHECK_THROWS_WITH(Document::load_file(p), Catch::Contains("larger than 1 MiB"));
    std::filesystem::remove(p);
}
