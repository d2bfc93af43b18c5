"""onnx.checker on every .onnx file under the folder given (the committed
example models). Exit 77 (ctest's skip) when python3-onnx is missing."""
import glob
import os
import sys

try:
    import onnx
except ImportError:
    print("SKIP: python3-onnx is not installed")
    sys.exit(77)

root = sys.argv[1]
paths = sorted(glob.glob(os.path.join(root, "**", "*.onnx"), recursive=True))
if not paths:
    sys.exit(f"no .onnx files under {root}")
failed = 0
for path in paths:
    try:
        onnx.checker.check_model(onnx.load(path), full_check=True)
        print(f"ok {os.path.relpath(path, root)}")
    except Exception as e:  # every failure is reported, then counted
        failed += 1
        print(f"FAIL {os.path.relpath(path, root)}: {e}")
sys.exit(1 if failed else 0)
