"""Small files and functions (doc/ARCHITECTURE.md, "Code size"): no C++ file in lib/ or tools/ over 500
lines, no function over 80 (from the line of its opening brace to the line of its closing one, lambdas
and local classes inside it included). Functions are found by a brace scanner over the text with
comments and literals blanked: a brace that opens after `)` (and qualifiers) outside any function body
starts one. The scanner is checked on planted sources, so the real-tree tests can fail."""
import os
import re

import pytest

import harness

ROOT = harness.SOURCE_ROOT
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 80
# `) {`, `) const {`, `) noexcept override {`, `) -> T {`, `) : a_(x) {` ends as `)` too.
FUNCTION_HEAD = re.compile(r"\)\s*(?:(?:const|noexcept|override|final|mutable|&&|&)\s*)*(?:->\s*[\w:<>,\s*&]+)?$")
STATEMENT = re.compile(r"\b(?:if|for|while|switch|catch)\s*\(")
RAW_STRING = re.compile(r'R"([^(\s]{0,16})\(')


def blank(text):
    """`text` with comments, string and character literals emptied and every newline kept."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("//", i):
            i = n if text.find("\n", i) < 0 else text.find("\n", i)
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("\n" * text.count("\n", i, end))
            i = end
        elif (raw := RAW_STRING.match(text, i)) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            close = text.find(")" + raw.group(1) + '"', raw.end())
            end = n if close < 0 else close + len(raw.group(1)) + 2
            out.append('""' + "\n" * text.count("\n", i, end))
            i = end
        elif text[i] in "\"'" and not (text[i] == "'" and i and text[i - 1].isalnum()):  # 1'000'000 is a number
            quote, j = text[i], i + 1
            while j < n and text[j] != quote and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(quote * 2)
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def functions(text):
    """(name, first line, length in lines) of every function body in C++ source `text`."""
    code = blank(text)
    stack, found = [], []  # (is a function body, offset of its brace)
    for i, c in enumerate(code):
        if c == "{":
            in_function = any(fn for fn, _ in stack)
            head = code[max(0, i - 400):i].rstrip()
            last_line = head.rsplit("\n", 1)[-1]
            stack.append((not in_function and bool(FUNCTION_HEAD.search(head)) and not STATEMENT.search(last_line), i))
        elif c == "}" and stack:
            is_function, start = stack.pop()
            if is_function:
                declaration = re.split(r"[;{}]", code[max(0, start - 400):start])[-1]
                names = re.findall(r"([~\w:]+)\s*\(", declaration)  # the first: not a member initializer
                first = code.count("\n", 0, start) + 1
                found.append((names[0] if names else "?", first, code.count("\n", start, i) + 1))
    return found


def too_big(root):
    """Every file and function of lib/ and tools/ under `root` over its limit, as readable lines."""
    found = []
    for top in ("lib", "tools"):
        for folder, _, files in os.walk(os.path.join(root, top)):
            for f in sorted(files):
                if not f.endswith((".cpp", ".hpp", ".h")):
                    continue
                path = os.path.join(folder, f)
                rel = os.path.relpath(path, root)
                with open(path, errors="replace") as fh:
                    text = fh.read()
                if text.count("\n") > MAX_FILE_LINES:
                    found.append(f"{rel}: {text.count(chr(10))} lines (over {MAX_FILE_LINES})")
                found += [f"{rel}:{line}: {name} is {size} lines (over {MAX_FUNCTION_LINES})"
                          for name, line, size in functions(text) if size > MAX_FUNCTION_LINES]
    return found


def test_no_file_or_function_in_lib_or_tools_is_over_its_limit():
    found = too_big(ROOT)
    assert not found, "split these:\n" + "\n".join(found)


def body(lines):
    """`lines` lines of statements."""
    return "\n".join(f"    x += {i};" for i in range(lines))


# Planted sources and the (name, length) the scanner must measure for each function in them.
PLANTED = [
    (f"int f(int x) {{\n{body(79)}\n}}\n", [("f", 81)]),
    (f"int f(int x) {{\n{body(78)}\n}}\n", [("f", 80)]),
    (f"namespace n {{\nstruct S {{\n    int g(int x) const {{\n{body(3)}\n    }}\n}};\n}}\n", [("g", 5)]),
    (f"auto Obj::run() -> int {{\n    auto l = [&]() {{ return 1; }};\n{body(2)}\n}}\n", [("Obj::run", 5)]),
    (f"Obj::Obj(int a) : a_(a) {{\n    if (a) {{\n{body(2)}\n    }}\n}}\n", [("Obj::Obj", 6)]),
    (f"void a() noexcept {{\n}}\nint b() {{\n    return 1;\n}}\n", [("a", 2), ("b", 3)]),
    # Braces inside comments, strings, characters and raw strings are not code; 1'000 is a number.
    ("int f() {\n    // } {\n    const char* s = \"}\";\n    char c = '}';\n    auto r = R\"x(}\n)x\";\n"
     "    /* } */ int n = 1'000;\n}\nvoid g() {\n}\n", [("f", 8), ("g", 2)]),
]


@pytest.mark.parametrize("source,expected", PLANTED)
def test_the_scanner_measures_planted_functions(source, expected):
    assert [(name, size) for name, _, size in functions(source)] == expected


def test_a_planted_long_file_and_function_fail(tmp_path):
    (tmp_path / "lib" / "base").mkdir(parents=True)
    (tmp_path / "tools" / "tn-x").mkdir(parents=True)
    (tmp_path / "lib" / "base" / "long.cpp").write_text("int a;\n" * (MAX_FILE_LINES + 1))
    (tmp_path / "tools" / "tn-x" / "f.cpp").write_text(f"void go() {{\n{body(MAX_FUNCTION_LINES - 1)}\n}}\n")
    (tmp_path / "tools" / "tn-x" / "ok.cpp").write_text(f"void go() {{\n{body(MAX_FUNCTION_LINES - 2)}\n}}\n")
    assert too_big(str(tmp_path)) == [
        f"lib/base/long.cpp: {MAX_FILE_LINES + 1} lines (over {MAX_FILE_LINES})",
        f"tools/tn-x/f.cpp:1: go is {MAX_FUNCTION_LINES + 1} lines (over {MAX_FUNCTION_LINES})",
    ]
