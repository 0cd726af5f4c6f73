#!/usr/bin/env python3
"""The remote half of upload-run-fetch.sh: reads paragraphs ("id<TAB>title<TAB>text" lines), writes one
result line per paragraph with its word count and the most similar other paragraph (shared words)."""
import sys


def main():
    if len(sys.argv) != 3:
        print("usage: assess_report.py INPUT RESULT", file=sys.stderr)
        return 2
    rows = []
    with open(sys.argv[1], encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                print(f"{sys.argv[1]}:{n}: skipped (want id<TAB>title<TAB>text)", file=sys.stderr)
                continue
            rows.append((parts[0], parts[1], set(parts[2].lower().split())))
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        for pid, title, words in rows:
            best, score = "-", 0
            for oid, _, other in rows:
                if oid != pid and len(words & other) > score:
                    best, score = oid, len(words & other)
            out.write(f"{pid}\t{title}\t{len(words)}\t{best}\t{score}\n")
    print(f"assessed {len(rows)} paragraphs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
