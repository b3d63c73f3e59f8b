"""Print quick-start command N from README.md (the ```bash block after `<!-- ci:command N -->`).

CI runs exactly what the README tells people to run, so the two can never drift apart.
"""
import re
import sys
from pathlib import Path

n = sys.argv[1]
text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
m = re.search(r"<!-- ci:command " + re.escape(n) + r" -->\s*```bash\n(.*?)```", text, re.S)
if not m:
    sys.exit(f"README.md has no block marked <!-- ci:command {n} -->")
print(m.group(1).strip())
