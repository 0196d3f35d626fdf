#!/usr/bin/env bash
# Fails when a document or a source file points at a .md file that is not in the repository, or
# at a numbered section ("docs/privacy.md §4") that the document does not have.
#   gateway/scripts/check-doc-links.sh [REPO_DIR]     (ctest: doc_links, label lint)
# Checked:
#   - every *.md file: markdown links to relative paths (any target), bare mentions of a .md
#     path, and "§N" references, with a file name or, alone, to the document itself;
#   - every text file under gateway/ tests/ benchmarks/ mappers/ fhir-profiles/ docker/: mentions
#     of a .md path (in comments, hints and descriptions alike) and their "§N".
# A mention resolves against the mentioning file's folder or the repository root. A section N is
# a heading whose text starts with the number ("## 4. Decisions", "### 5.1 Candidates").
# A line containing "doc-links: ignore" is skipped.
set -euo pipefail
repo=${1:-"$(cd "$(dirname "$0")/../.." && pwd)"}
exec python3 - "$repo" <<'PY'
import os
import re
import sys

repo = os.path.realpath(sys.argv[1])
CODE_DIRS = ["gateway", "tests", "benchmarks", "mappers", "fhir-profiles", "docker"]
SKIP_DIRS = {".git", "node_modules", "__pycache__"}
IGNORE = "doc-links: ignore"

MD_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
MD_MENTION = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]*\w\.md)(?![\w-])")
SECTION_CHAIN = re.compile(r"(?:\s*(?:,|and|&)?\s*§\s*(\d+(?:\.\d+)*))")
SECTION_ANY = re.compile(r"§\s*(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?(?:\s|$)")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")

problems = []
headings_cache = {}


def rel(path):
    return os.path.relpath(path, repo)


def is_build_tree(dirpath, names):
    return "CMakeCache.txt" in names or (os.path.dirname(dirpath) == repo and os.path.basename(dirpath).startswith("build"))


def walk(top):
    for dirpath, dirnames, filenames in os.walk(top):
        if is_build_tree(dirpath, filenames) and dirpath != repo:
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not (dirpath == repo and d.startswith("build")))
        for f in sorted(filenames):
            yield os.path.join(dirpath, f)


def read_text(path):
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def sections_of(md_path):
    if md_path not in headings_cache:
        found = set()
        text = read_text(md_path) or ""
        fenced = False
        for line in text.splitlines():
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            m = None if fenced else HEADING.match(line)
            if m:
                found.add(m.group(1))
        headings_cache[md_path] = found
    return headings_cache[md_path]


def resolve(source, target):
    """The existing path `target` names from `source`, or None."""
    if target.startswith("/"):
        candidates = [os.path.join(repo, target.lstrip("/"))]
    else:
        candidates = [os.path.join(os.path.dirname(source), target), os.path.join(repo, target)]
    for c in candidates:
        if os.path.exists(c):
            return os.path.realpath(c)
    return None


def check_sections(source, lineno, target_name, target_path, tail):
    """Checks the "§N" chain right after a mention; returns the chain's length in characters."""
    pos = 0
    while True:
        m = SECTION_CHAIN.match(tail, pos)
        if not m:
            return pos
        if target_path and target_path.endswith(".md") and m.group(1) not in sections_of(target_path):
            problems.append(f"{rel(source)}:{lineno}: {target_name} has no section §{m.group(1)}")
        pos = m.end()


def check_line(source, lineno, line, markdown):
    covered = []  # spans of mentions and their section chains
    if markdown:
        for m in MD_LINK.finditer(line):
            target = m.group(1)
            if target.startswith("#") or SCHEME.match(target):
                continue
            path_part = re.split(r"[#?]", target, maxsplit=1)[0]
            if not path_part:
                continue
            resolved = resolve(source, path_part)
            if resolved is None:
                problems.append(f"{rel(source)}:{lineno}: link to missing {path_part}")
            end = m.end() + check_sections(source, lineno, path_part, resolved, line[m.end():])
            covered.append((m.start(), end))
    for m in MD_MENTION.finditer(line):
        if any(a <= m.start() < b for a, b in covered):
            continue
        name = m.group(1)
        resolved = resolve(source, name)
        if resolved is None:
            problems.append(f"{rel(source)}:{lineno}: mention of missing {name}")
        end = m.end() + check_sections(source, lineno, name, resolved, line[m.end():])
        covered.append((m.start(), end))
    if markdown:
        # "§N" on its own refers to the document it is in.
        for m in SECTION_ANY.finditer(line):
            if any(a <= m.start() < b for a, b in covered):
                continue
            if m.group(1) not in sections_of(os.path.realpath(source)):
                problems.append(f"{rel(source)}:{lineno}: no section §{m.group(1)} in this document")


def check_file(path, markdown):
    text = read_text(path)
    if text is None:
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        if IGNORE in line:
            continue
        check_line(path, lineno, line, markdown)


checked = 0
for path in walk(repo):
    if path.endswith(".md"):
        check_file(path, True)
        checked += 1
for d in CODE_DIRS:
    top = os.path.join(repo, d)
    if not os.path.isdir(top):
        continue
    for path in walk(top):
        if not path.endswith(".md"):
            check_file(path, False)
            checked += 1

for p in problems:
    print(p)
if problems:
    print(f"check-doc-links: {len(problems)} broken reference(s) in {checked} files", file=sys.stderr)
    sys.exit(1)
print(f"check-doc-links: {checked} files, every .md reference resolves")
PY
