"""Build dqn.ipynb and dqn.zh-CN.ipynb: dqn.py's own code cells between one markdown source per language.

    python notebooks/build.py           # write both notebooks, without outputs
    python notebooks/build.py --check   # exit 1 if a committed notebook differs from what this builds

A code cell that holds only `# dqn.py: <section>` in notebooks/<language>.md becomes the
dqn.py section whose `# %% <section> ---` marker has that name, so the notebooks show the
code that `python dqn.py` runs and cannot drift from it. Every dqn.py section but the
docstring and the command-line hand-over must appear once, in dqn.py's order.
"""

import re
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {"dqn.ipynb": "en.md", "dqn.zh-CN.ipynb": "zh-CN.md"}
PLACEHOLDER = re.compile(r"# dqn\.py: (.+)")
LEFT_OUT = {"", "Command line"}  # the module docstring; the main guard would parse the kernel's own argv


def dqn_sections():
    """{section name: its code} for each `# %% name ---` cell of dqn.py, in order."""
    cells = jupytext.read(ROOT / "dqn.py", fmt="py:percent").cells
    return {cell.metadata.get("title", "").rstrip("- "): cell.source for cell in cells}


def build(source):
    """The notebook for one language's markdown source, as the text of an .ipynb file."""
    sections, used = dqn_sections(), []
    notebook = jupytext.read(source, fmt="md")
    for i, cell in enumerate(notebook.cells):
        match = PLACEHOLDER.fullmatch(cell.source.strip()) if cell.cell_type == "code" else None
        if match:
            used.append(match[1])
            cell.source = sections[match[1]]
        cell.id = str(i)  # fixed ids keep the rebuild byte-stable; nbstripout numbers them the same way
    expected = [name for name in sections if name not in LEFT_OUT]
    if used != expected:
        raise SystemExit(f"{source.name}: dqn.py sections used {used}, expected {expected}")
    # What Jupyter's own kernel writes, so that running the notebook leaves its metadata as it
    # was; language_info, which a run fills in, is left out (the README's nbstripout drops it).
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    }
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    return nbformat.writes(notebook) + "\n"


def main():
    stale = []
    for name, source in NOTEBOOKS.items():
        text = build(ROOT / "notebooks" / source)
        path = ROOT / name
        if "--check" in sys.argv:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {name}")
    if stale:
        sys.exit(f"out of date (run python notebooks/build.py): {', '.join(stale)}")


if __name__ == "__main__":
    main()
