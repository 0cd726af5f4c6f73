#!/bin/bash
# Checks C++ formatting against .clang-format without reformatting anything.
#   scripts/check_format.sh            the files in scripts/format_allowlist.txt must be formatted (exit 1 if not)
#   scripts/check_format.sh --report   every C++ file of lib/ tools/ tests/ fuzz/ with the number of lines
#                                      clang-format would change (exit 0)
#   scripts/check_format.sh --clean    the files that are already formatted (candidates for the allowlist)
# The tree is not reformatted in bulk: a file joins the allowlist once someone formats it on purpose.
# Exit 77 (skip) when clang-format is missing. The version is pinned to 14 when it is installed, because
# other versions format a few constructs differently.
set -euo pipefail
cd "$(dirname "$0")/.."
fmt=$(command -v clang-format-14 || command -v clang-format || true)
if [[ -z $fmt ]]; then
    echo "check_format: clang-format not installed, skipped" >&2
    exit 77
fi
changed_lines() { "$fmt" --style=file "$1" | diff "$1" - | grep -c '^<' || true; }
case "${1:-}" in
--report | --clean)
    mapfile -t files < <(git ls-files 'lib/*.[ch]pp' 'tools/*.[ch]pp' 'tests/*.[ch]pp' 'fuzz/*.[ch]pp')
    for f in "${files[@]}"; do
        n=$(changed_lines "$f")
        if [[ $1 == --report ]]; then printf '%5d %s\n' "$n" "$f"; elif [[ $n == 0 ]]; then echo "$f"; fi
    done
    ;;
"")
    mapfile -t files < <(grep -v '^#' scripts/format_allowlist.txt | grep .)
    bad=0
    for f in "${files[@]}"; do
        if [[ ! -f $f ]]; then
            echo "check_format: $f is in scripts/format_allowlist.txt but does not exist" >&2
            bad=1
        elif ! "$fmt" --style=file --dry-run --Werror "$f" 2>/dev/null; then
            echo "check_format: $f is not formatted: $fmt -i $f" >&2
            bad=1
        fi
    done
    ((bad == 0)) && echo "check_format: ${#files[@]} files formatted"
    exit $bad
    ;;
*)
    echo "usage: $0 [--report | --clean]" >&2
    exit 64
    ;;
esac
