"""Point every [`name`](file.py#Lnn) link in the READMEs and docs/ at the line that defines name.

The files are dqn.py and the modules of beyond/ (seen from docs/ as ../dqn.py and so on).

python bench/readme_links.py          # rewrite the links in place
python bench/readme_links.py --check  # exit 1, listing the stale links, without writing
"""

import functools
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READMES = [ROOT / "README.md", ROOT / "README.zh-CN.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[`([\w.]+)`\]\((?:\.\./)?((?:beyond/)?\w+\.py)#L(\d+)\)")


@functools.cache
def symbol_lines(path="dqn.py"):
    """Line of each top-level def/class/assignment in ROOT/path, and of each Class.method."""
    found, current_class = {}, None
    for number, line in enumerate((ROOT / path).read_text().splitlines(), start=1):
        match = re.match(r"(\s*)(?:def|class) (\w+)|(\w+) = ", line)
        if not match:
            continue
        indent, name = match.group(1) or "", match.group(2) or match.group(3)
        if not indent:
            current_class = name if line.startswith("class ") else None
            found[name] = number
        elif current_class and len(indent) == 4:
            found[f"{current_class}.{name}"] = number
    return found


def stale_links(text):
    """{"path:name": (linked line, actual line or None)} for each link that points elsewhere."""
    return {
        f"{path}:{name}": (int(at), symbol_lines(path).get(name))
        for name, path, at in LINK.findall(text)
        if symbol_lines(path).get(name) != int(at)
    }


def main():
    stale = False
    for readme in READMES:
        text = readme.read_text(encoding="utf-8")
        wrong = stale_links(text)
        unknown = [name for name, (_, actual) in wrong.items() if actual is None]
        if unknown:
            sys.exit(f"{readme.name}: links to names their files do not define: {unknown}")
        if wrong and "--check" in sys.argv:
            print(f"{readme.name}: stale links {wrong}")
            stale = True
        elif wrong:
            text = LINK.sub(lambda m: m[0].replace(f"#L{m[3]})", f"#L{symbol_lines(m[2])[m[1]]})"), text)
            readme.write_text(text, encoding="utf-8")
            print(f"{readme.name}: fixed {len(wrong)} links")
    sys.exit(1 if stale else 0)


if __name__ == "__main__":
    main()
