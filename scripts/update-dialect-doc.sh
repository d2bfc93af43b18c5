#!/usr/bin/env bash
# Regenerates the op table of docs/dialect.md from `moai-opt --list-ops`
# (the test docs.dialect_table fails while they differ).
# Usage: scripts/update-dialect-doc.sh [BUILD_DIR]   (default: build)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
opt="${1:-$root/build}/bin/moai-opt"
[ -x "$opt" ] || { echo "update-dialect-doc: $opt not found; build first" >&2; exit 1; }
table="$("$opt" --list-ops)"
/usr/bin/python3 - "$root/docs/dialect.md" "$table" <<'PY'
import sys
path, table = sys.argv[1], sys.argv[2]
doc = open(path).read()
begin = "<!-- BEGIN OPS (moai-opt --list-ops) -->\n"
end = "<!-- END OPS -->"
i, j = doc.index(begin) + len(begin), doc.index(end)
open(path, "w").write(doc[:i] + table.rstrip("\n") + "\n" + doc[j:])
PY
