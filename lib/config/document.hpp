// TOML config access for every tool: parse errors and validation problems as FILE:LINE:COL, unknown
// keys rejected with a "did you mean", and typed accessors so tools never touch toml++ nodes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace toml {
inline namespace v3 {
class table;
class node;
}  // namespace v3
}  // namespace toml

namespace tn::config {

struct Diagnostic {
    std::string file;
    std::uint32_t line = 0;
    std::uint32_t column = 0;
    std::string message;
    std::string str() const;  // "FILE:LINE:COL: error: message"
};

class Table;

// `s` as a TOML basic string, quotes and escapes included: for tools that write TOML (importers).
std::string quote(std::string_view s);

// A parsed config file. Accessors record problems instead of throwing, so one run reports them all;
// finish() throws tn::Error(config) listing every problem, one per line.
class Document {
public:
    // Files over 1 MiB are refused: a config that large is a mistake, not a config.
    static Document load_file(const std::filesystem::path& path);
    static Document parse(std::string_view text, std::string source_name);

    Document(Document&&) noexcept;
    Document& operator=(Document&&) noexcept;
    ~Document();

    Table root() const;
    // The root's table `key` ([server] in a tn-tun server's file): when it is missing or not a table,
    // throws as finish() does, with that problem and every one recorded before it.
    Table require_table(std::string_view key) const;
    const std::vector<Diagnostic>& diagnostics() const { return *diags_; }
    void finish() const;
    const std::string& source() const { return source_; }

private:
    Document(std::unique_ptr<toml::table> t, std::string source);
    std::unique_ptr<toml::table> root_;
    std::string source_;
    std::shared_ptr<std::vector<Diagnostic>> diags_;
};

// A view of one table inside a Document. Cheap to copy; must not outlive its Document.
class Table {
public:
    // Reports every key not in `known` (with the closest known key as a suggestion).
    void allow_only(std::initializer_list<std::string_view> known) const;

    bool has(std::string_view key) const;
    std::vector<std::string> keys() const;        // every key of this table (importers list what they skip)
    bool is_boolean(std::string_view key) const;  // for keys that take true/false or a string
    bool is_array(std::string_view key) const;    // for keys that take a string or a list of them
    std::optional<std::string> string(std::string_view key) const;
    std::optional<std::int64_t> integer(std::string_view key, std::int64_t lo, std::int64_t hi) const;
    std::optional<bool> boolean(std::string_view key) const;
    std::optional<double> number(std::string_view key, double lo, double hi) const;  // int or float
    // With `integers_too`, integer elements come back as their decimal text (ports = [6000, "7000-7100"]).
    std::optional<std::vector<std::string>> strings(std::string_view key, bool integers_too = false) const;
    std::optional<Table> table(std::string_view key) const;
    std::vector<Table> tables(std::string_view key) const;  // an array of tables ([[key]])

    // Like string(), but a missing key is reported.
    std::optional<std::string> require_string(std::string_view key) const;

    // Records a problem at the key's location (or the table's, if the key is absent).
    void error(std::string_view key, const std::string& message) const;
    // The dotted path of this table, e.g. "forward[1]" ("" for the root).
    const std::string& path() const { return path_; }

private:
    friend class Document;
    Table(const toml::table* t, std::string path, std::string source, std::shared_ptr<std::vector<Diagnostic>> d)
        : t_(t), path_(std::move(path)), source_(std::move(source)), diags_(std::move(d)) {}
    const toml::node* get(std::string_view key) const;
    std::string key_path(std::string_view key) const;
    void report(const toml::node* at, const std::string& message) const;

    const toml::table* t_;
    std::string path_;
    std::string source_;
    std::shared_ptr<std::vector<Diagnostic>> diags_;
};

}  // namespace tn::config
