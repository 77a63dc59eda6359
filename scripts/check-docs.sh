#!/usr/bin/env bash
# Checks the documentation (README.md and docs/*.md), offline:
#   - every relative link resolves to a file or folder of the repository, and
#     a `#anchor` into a markdown file names one of its headings (GitHub's
#     slugs: lowercase, punctuation dropped, spaces to '-', repeats -1, -2…);
#   - README.md has at most 250 lines;
#   - nothing mentions DESIGN.md (or a DESIGN document) or the sibling shared folder, which a
#     clone of the repository does not have.
# Links inside code (fenced blocks, `inline`) are not links and are skipped,
# as are absolute URLs (http:, https:, mailto:).
#
#   scripts/check-docs.sh        exits non-zero naming each problem
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import os
import re
import sys
import unicodedata

ROOT = os.getcwd()
README_MAX_LINES = 250
FORBIDDEN = [
    (re.compile(r"\bDESIGN(\.md)?\b"), "mentions DESIGN.md / a DESIGN document, which the repository does not have"),
    (re.compile(r"\.\.[/]shared"), "mentions the sibling shared folder, outside the repository"),
]

files = ["README.md"]
if os.path.isdir("docs"):
    files += sorted(os.path.join("docs", f) for f in os.listdir("docs") if f.endswith(".md"))

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.I)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")


def prose_lines(lines):
    """(line number, text) outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(lines, 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def slug(text):
    """GitHub's anchor for a heading's text."""
    text = INLINE_CODE.sub(lambda m: m.group(2), text)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("*", "").strip().lower()
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "-_" or cat[0] in "LN" or cat == "Mn":
            kept.append(ch)
        elif ch == " ":
            kept.append("-")
    return "".join(kept)


anchor_cache = {}


def anchors(path):
    if path not in anchor_cache:
        seen, found = {}, set()
        for _, line in prose_lines(read_lines(path)):
            for name in HTML_ANCHOR.findall(line):
                found.add(name)
            m = HEADING.match(line)
            if not m:
                continue
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
        anchor_cache[path] = found
    return anchor_cache[path]


problems = []
links_checked = 0
readme_lines = 0

for doc in files:
    if not os.path.isfile(doc):
        problems.append(f"{doc}: missing")
        continue
    lines = read_lines(doc)
    count = len(lines) - (1 if lines and lines[-1] == "" else 0)
    if doc == "README.md":
        readme_lines = count
    if doc == "README.md" and count > README_MAX_LINES:
        problems.append(f"README.md: {count} lines, more than {README_MAX_LINES}")
    for number, line in enumerate(lines, 1):
        for pattern, why in FORBIDDEN:
            if pattern.search(line):
                problems.append(f"{doc}:{number}: {why}")
    for number, line in prose_lines(lines):
        text = INLINE_CODE.sub("", line)
        targets = [m.group(1) for m in LINK.finditer(text)]
        m = REF_DEF.match(text)
        if m:
            targets.append(m.group(1))
        for target in targets:
            target = target.strip("<>")
            if SCHEME.match(target):
                continue
            links_checked += 1
            path, _, anchor = target.partition("#")
            if path:
                resolved = os.path.normpath(os.path.join(os.path.dirname(doc), path))
                if resolved == ".." or resolved.startswith(".." + os.sep) or os.path.isabs(path):
                    problems.append(f"{doc}:{number}: broken link '{target}': outside the repository")
                    continue
                if not os.path.exists(resolved):
                    problems.append(f"{doc}:{number}: broken link '{target}': {resolved} does not exist")
                    continue
            else:
                resolved = doc
            if anchor and resolved.endswith(".md") and os.path.isfile(resolved):
                if anchor not in anchors(resolved):
                    problems.append(
                        f"{doc}:{number}: broken link '{target}': no heading #{anchor} in {resolved}"
                    )

for problem in problems:
    print(f"check-docs: {problem}", file=sys.stderr)
if problems:
    print(f"check-docs: {len(problems)} problem(s) in {len(files)} files", file=sys.stderr)
    sys.exit(1)
print(f"check-docs: {len(files)} files, {links_checked} relative links, README.md {readme_lines} lines: ok")
PY
