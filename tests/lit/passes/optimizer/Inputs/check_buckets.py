"""Checks moai-optimizer's gradient placement and buckets in printed IR.

Usage: check_buckets.py BEFORE.mlir AFTER.mlir [--no-buckets]

BEFORE: the module given to moai-autodiff (its trainable moai.weight names);
AFTER: the module after moai-optimizer. In @main of AFTER, every gradient
accumulation must directly follow the op computing its gradient (only
moai.state ops and other accumulations may come between), and the
moai.grad_ready ops must number their buckets 0, 1, ... in block order,
each after the accumulations of its operands, and name every trainable
weight's accumulator exactly once. With --no-buckets there must be none.
Prints "ok N buckets" on success.
"""
import re
import sys

before, after = open(sys.argv[1]).read(), open(sys.argv[2]).read()
no_buckets = "--no-buckets" in sys.argv
trainable = set(re.findall(r'"moai.weight"\(\) \{[^}]*name = "([^"]+)"[^}]*trainable = 1', before))
main = after[after.index("func.func @main"):after.index("func.func @update")]
lines = [l.strip() for l in main.splitlines()]

defined_at = {}   # SSA value -> line index
state_name = {}   # SSA value of a moai.state -> its name
accumulated = {}  # accumulator value -> line index of its accumulation
buckets = []
for i, line in enumerate(lines):
    m = re.match(r"(%[\w#:]+)(?::\d+)? = ", line)
    if m:
        for v in re.findall(r"%[\w]+", line.split(" = ")[0]):
            defined_at[v] = i
        base = m.group(1).split(":")[0]
        defined_at[base] = i
    s = re.match(r'(%\w+) = "moai.state"\(\) \{name = "([^"]+)"', line)
    if s:
        state_name[s.group(1)] = s.group(2)
    a = re.match(r'"moai.accumulate"\((%\w+), (%[\w#]+)\)', line)
    if a:
        acc, val = a.group(1), a.group(2).split("#")[0]
        if not state_name.get(acc, "").startswith("grad."):
            continue
        producer = defined_at.get(val)
        if producer is None:
            sys.exit(f"line {i}: the accumulated value {val} has no defining op in @main")
        between = lines[producer + 1:i]
        if any(not re.search(r'"moai\.(state|accumulate)"', l) for l in between):
            sys.exit(f"line {i}: the accumulation of {state_name[acc]} is not next to the op "
                     f"computing its gradient (line {producer})")
        accumulated[acc] = i
    g = re.match(r'"moai.grad_ready"\(([^)]*)\) \{bucket = (\d+) : i64', line)
    if g:
        buckets.append((i, int(g.group(2)), [v.strip() for v in g.group(1).split(",")]))

if no_buckets:
    if buckets:
        sys.exit(f"{len(buckets)} moai.grad_ready ops, expected none")
    print("ok 0 buckets")
    sys.exit(0)
if [b for _, b, _ in buckets] != list(range(len(buckets))):
    sys.exit(f"bucket numbers {[b for _, b, _ in buckets]} are not 0, 1, ... in block order")
seen = []
for i, b, operands in buckets:
    for v in operands:
        if v not in accumulated or accumulated[v] > i:
            sys.exit(f"bucket {b}: {v} is not accumulated before its grad_ready")
        seen.append(state_name[v][len("grad."):])
dupes = sorted({n for n in seen if seen.count(n) > 1})
if dupes or set(seen) != trainable:
    sys.exit(f"buckets name {len(seen)} accumulators for {len(trainable)} trainable weights; "
             f"twice: {dupes[:3]}, missing: {sorted(trainable - set(seen))[:3]}, "
             f"extra: {sorted(set(seen) - trainable)[:3]}")
print(f"ok {len(buckets)} buckets")
