// Document and Table over toml++; the only file that includes toml++.
#include "config/document.hpp"

#include <toml++/toml.h>

#include <fstream>
#include <sstream>

#include "base/error.hpp"
#include "base/strings.hpp"

namespace tn::config {

namespace {
constexpr std::uintmax_t max_config_bytes = 1u << 20;

const char* type_name(const toml::node& n) {
    switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    default: return "a date/time";
    }
}
// toml++'s parse errors read like parser internals ("Error while parsing key-value pair: expected
// value, saw '\n'"); the user gets what went wrong where they typed it, on one line.
std::string plain_parse_error(std::string msg) {
    static const std::pair<std::string_view, std::string_view> rewrites[] = {
        {"Error while parsing ", "in "},
        {R"(saw '\n')", "found the end of the line"},  // toml++ escapes the newline it saw
        {"saw end-of-file", "found the end of the file"},
        {"expected value", "expected a value"},
    };
    for (const auto& [from, to] : rewrites)
        if (auto at = msg.find(from); at != std::string::npos) msg.replace(at, from.size(), to);
    for (auto& c : msg)
        if (c == '\n' || c == '\r') c = ' ';
    return msg;
}
}  // namespace

std::string Diagnostic::str() const {
    return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": error: " + message;
}

Document::Document(std::unique_ptr<toml::table> t, std::string source)
    : root_(std::move(t)), source_(std::move(source)), diags_(std::make_shared<std::vector<Diagnostic>>()) {}
Document::Document(Document&&) noexcept = default;
Document& Document::operator=(Document&&) noexcept = default;
Document::~Document() = default;

Document Document::parse(std::string_view text, std::string source_name) {
    try {
        auto t = std::make_unique<toml::table>(toml::parse(text, source_name));
        return Document(std::move(t), std::move(source_name));
    } catch (const toml::parse_error& e) {
        Diagnostic d{source_name, e.source().begin.line, e.source().begin.column,
                     plain_parse_error(std::string(e.description()))};
        throw Error(ExitCode::config, d.str());
    }
}

Document Document::load_file(const std::filesystem::path& path) {
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    if (ec) throw Error(ExitCode::config, path.string() + ": error: cannot read config: " + ec.message());
    if (size > max_config_bytes) throw Error(ExitCode::config, path.string() + ": error: config larger than 1 MiB");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(ExitCode::config, path.string() + ": error: cannot open config");
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse(ss.str(), path.string());
}

Table Document::root() const { return Table(root_.get(), "", source_, diags_); }

Table Document::require_table(std::string_view key) const {
    auto r = root();
    if (auto t = r.table(key)) return *t;
    if (!r.has(key)) r.error(key, "missing [" + std::string(key) + "] table");
    finish();
    throw Error(ExitCode::config, source_ + ": missing [" + std::string(key) + "] table");  // finish() threw already
}

void Document::finish() const {
    if (diags_->empty()) return;
    std::string msg;
    for (const auto& d : *diags_) {
        if (!msg.empty()) msg += '\n';
        msg += d.str();
    }
    throw Error(ExitCode::config, msg);
}

const toml::node* Table::get(std::string_view key) const { return t_->get(key); }

std::string Table::key_path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

void Table::report(const toml::node* at, const std::string& message) const {
    const auto& src = at != nullptr ? at->source() : t_->source();
    diags_->push_back(Diagnostic{source_, src.begin.line, src.begin.column, message});
}

void Table::error(std::string_view key, const std::string& message) const {
    report(get(key), key_path(key) + ": " + message);
}

void Table::allow_only(std::initializer_list<std::string_view> known) const {
    std::vector<std::string> names(known.begin(), known.end());
    for (const auto& [k, v] : *t_) {
        std::string_view name = k.str();
        bool ok = false;
        for (auto n : known) ok = ok || n == name;
        if (ok) continue;
        std::string msg = "unknown key \"" + key_path(name) + "\"";
        if (auto s = closest_match(name, names)) msg += " (did you mean \"" + *s + "\"?)";
        const auto& src = k.source();
        diags_->push_back(Diagnostic{source_, src.begin.line, src.begin.column, msg});
    }
}

bool Table::has(std::string_view key) const { return get(key) != nullptr; }

std::vector<std::string> Table::keys() const {
    std::vector<std::string> out;
    for (const auto& [k, v] : *t_) out.emplace_back(k.str());
    return out;
}

std::string quote(std::string_view s) {
    std::ostringstream os;
    os << toml::value<std::string>(std::string(s));
    return os.str();
}

std::optional<std::string> Table::string(std::string_view key) const {
    const auto* n = get(key);
    if (n == nullptr) return std::nullopt;
    if (auto v = n->value<std::string>(); v && n->is_string()) return v;
    report(n, key_path(key) + ": expected a string, got " + type_name(*n));
    return std::nullopt;
}

std::optional<std::string> Table::require_string(std::string_view key) const {
    if (!has(key)) {
        report(nullptr, "missing required key \"" + key_path(key) + "\"");
        return std::nullopt;
    }
    return string(key);
}

std::optional<std::int64_t> Table::integer(std::string_view key, std::int64_t lo, std::int64_t hi) const {
    const auto* n = get(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_integer()) {
        report(n, key_path(key) + ": expected an integer, got " + type_name(*n));
        return std::nullopt;
    }
    auto v = *n->value<std::int64_t>();
    if (v < lo || v > hi) {
        report(n, key_path(key) + ": " + std::to_string(v) + " is out of range " + std::to_string(lo) + ".." +
                      std::to_string(hi));
        return std::nullopt;
    }
    return v;
}

std::optional<double> Table::number(std::string_view key, double lo, double hi) const {
    const auto* n = get(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_number()) {
        report(n, key_path(key) + ": expected a number, got " + type_name(*n));
        return std::nullopt;
    }
    double v = *n->value<double>();
    if (v < lo || v > hi) {
        std::ostringstream os;
        os << key_path(key) << ": " << v << " is out of range " << lo << ".." << hi;
        report(n, os.str());
        return std::nullopt;
    }
    return v;
}

bool Table::is_boolean(std::string_view key) const {
    const auto* n = get(key);
    return n != nullptr && n->is_boolean();
}

bool Table::is_array(std::string_view key) const {
    const auto* n = get(key);
    return n != nullptr && n->is_array();
}

std::optional<bool> Table::boolean(std::string_view key) const {
    const auto* n = get(key);
    if (n == nullptr) return std::nullopt;
    if (!n->is_boolean()) {
        report(n, key_path(key) + ": expected true or false, got " + type_name(*n));
        return std::nullopt;
    }
    return *n->value<bool>();
}

std::optional<std::vector<std::string>> Table::strings(std::string_view key, bool integers_too) const {
    const auto* n = get(key);
    if (n == nullptr) return std::nullopt;
    const auto* arr = n->as_array();
    if (arr == nullptr) {
        report(n, key_path(key) + ": expected an array of strings, got " + type_name(*n));
        return std::nullopt;
    }
    std::vector<std::string> out;
    for (const auto& el : *arr) {
        if (integers_too && el.is_integer()) {
            out.push_back(std::to_string(*el.value<std::int64_t>()));
            continue;
        }
        if (!el.is_string()) {
            report(&el, key_path(key) + ": expected only strings, got " + type_name(el));
            return std::nullopt;
        }
        out.push_back(*el.value<std::string>());
    }
    return out;
}

std::optional<Table> Table::table(std::string_view key) const {
    const auto* n = get(key);
    if (n == nullptr) return std::nullopt;
    const auto* t = n->as_table();
    if (t == nullptr) {
        report(n, key_path(key) + ": expected a table, got " + type_name(*n));
        return std::nullopt;
    }
    return Table(t, key_path(key), source_, diags_);
}

std::vector<Table> Table::tables(std::string_view key) const {
    std::vector<Table> out;
    const auto* n = get(key);
    if (n == nullptr) return out;
    const auto* arr = n->as_array();
    if (arr == nullptr || !arr->is_array_of_tables()) {
        report(n, key_path(key) + ": expected [[" + std::string(key) + "]] tables, got " + type_name(*n));
        return out;
    }
    std::size_t i = 0;
    for (const auto& el : *arr) {
        out.push_back(Table(el.as_table(), key_path(key) + "[" + std::to_string(i) + "]", source_, diags_));
        ++i;
    }
    return out;
}

}  // namespace tn::config
