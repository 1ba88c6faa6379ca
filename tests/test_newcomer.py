"""The newcomer path: the README's own commands, run as written, in a fresh virtual env."""

import re
import subprocess
import sys
import venv

import pytest

from conftest import ROOT, headless_env

sys.path.insert(0, str(ROOT / "bench"))
import readme_links  # noqa: E402

README = (ROOT / "README.md").read_text(encoding="utf-8")
README_ZH = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
PAGES = sorted((ROOT / "docs").glob("*.md"))


def commands(text, section):
    """The shell lines of the fenced bash blocks in one '## section' of a README."""
    body = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", body, flags=re.S)
    return [line.split("#")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_readme_starts_with_install_run_and_test():
    run_it = commands(README, "Run it")
    assert run_it[:2] == ["pip install -r requirements.txt", "python dqn.py"]
    assert "python -m pytest" in run_it
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pytest\n" in ci  # CI runs exactly the README's test command


@pytest.mark.slow
def test_readme_commands_work_in_a_fresh_venv(tmp_path):
    """In a new venv that sees no system packages: the README's install, quick run and test set-up."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    run_it = commands(README, "Run it")
    quick = next(c for c in run_it if c.startswith("python dqn.py --episodes"))
    test_setup = [c for c in run_it if c.startswith("pip install") and c != run_it[0]]
    # torch's CPU build first, as the README advises: here that pin is the CPU build
    # the README's test command on a quick subset: the whole suite would run this test again
    subset = "python -m pytest -q tests/test_dqn.py -k hyperparameters_are_the_blogs"
    steps = ["pip install torch==2.13.0", run_it[0], quick, *test_setup, subset]
    for command in steps:
        argv = command.split()
        argv[0] = str(bin_dir / argv[0])
        if argv[1] == "dqn.py":
            argv[1] = str(ROOT / "dqn.py")
        result = subprocess.run(
            argv,
            cwd=tmp_path if argv[0].endswith("python") and argv[1] == str(ROOT / "dqn.py") else ROOT,
            env=headless_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert result.returncode == 0, (command, result.stdout[-1500:], result.stderr[-1500:])
        if command == quick:
            (run_dir,) = (tmp_path / "runs").iterdir()
            assert f"run folder: runs/{run_dir.name}" in result.stdout
    assert (run_dir / "rewards.png").stat().st_size > 0 and (run_dir / "model.pt").stat().st_size > 0
    assert test_setup == ["pip install -r requirements-dev.txt"]
    assert "1 passed" in result.stdout  # pytest runs in that venv


@pytest.mark.parametrize("text", [README, README_ZH], ids=["README.md", "README.zh-CN.md"])
def test_links_to_dqn_py_point_at_what_they_name(text):
    assert len(readme_links.LINK.findall(text)) >= 12
    wrong = readme_links.stale_links(text)
    assert not wrong, f"stale links (name: (linked, actual)); run python bench/readme_links.py: {wrong}"


def test_chinese_readme_links_back_and_covers_the_same_sections():
    assert "README.md" in README_ZH and "README.zh-CN.md" in README
    for command in ["pip install -r requirements.txt", "python dqn.py", "python -m pytest"]:
        assert command in README_ZH


def page_shape(text):
    """What a translation keeps: its headings' levels, its tables, its figures and its code blocks."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    return dict(
        headings=[len(hashes) for hashes in re.findall(r"^(#+) ", prose, flags=re.M)],
        tables=len(re.findall(r"^\|[-| :]+\|$", text, flags=re.M)),
        figures=sorted(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)),
        code_blocks=text.count("```"),
    )


ENGLISH_PAGES = [ROOT / "README.md", *(p for p in PAGES if not p.name.endswith(".zh-CN.md"))]


@pytest.mark.parametrize("page", ENGLISH_PAGES, ids=lambda p: p.name)
def test_each_chinese_page_has_its_english_pages_sections_tables_figures_and_code(page):
    chinese = page.with_name(page.name.replace(".md", ".zh-CN.md")).read_text(encoding="utf-8")
    english = page.read_text(encoding="utf-8")
    assert page_shape(chinese) == page_shape(english)
    lost_section = re.sub(r"^## .*?(?=^## )", "", chinese, count=1, flags=re.M | re.S)
    unclosed_code = chinese.replace("```", "", 1)
    assert lost_section == chinese or page_shape(lost_section) != page_shape(english)
    assert unclosed_code == chinese or page_shape(unclosed_code) != page_shape(english)


def test_every_figure_and_local_link_in_the_docs_exists_and_the_numbers_name_their_commands():
    everything = ""
    for page in [ROOT / "README.md", ROOT / "README.zh-CN.md", *PAGES]:
        text = page.read_text(encoding="utf-8")
        everything += text
        assert "PLACEHOLDER" not in text
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if not target.startswith("http"):
                assert (page.parent / target).exists(), f"{page.name}: {target}"
    benches = ["figures", "speed", "seeds", "ablation", "pixel_protocol", "pixel_speed"]
    for command in [f"bench/{name}.py" for name in benches]:
        assert command in everything


def test_the_readme_is_short_and_every_page_is_one_click_away_in_both_languages():
    assert len(README.splitlines()) <= 200 and len(README_ZH.splitlines()) <= 200
    english = [p for p in PAGES if not p.name.endswith(".zh-CN.md")]
    assert len(english) >= 5
    for page in english:
        chinese = page.with_name(page.name.replace(".md", ".zh-CN.md"))
        assert chinese.exists(), chinese.name
        assert f"(docs/{page.name})" in README and f"(docs/{chinese.name})" in README_ZH
    assert "dqn.ipynb" in README and "dqn.zh-CN.ipynb" in README_ZH


@pytest.mark.parametrize("page", [ROOT / "README.md", ROOT / "README.zh-CN.md", *PAGES], ids=lambda p: p.name)
def test_the_docs_speak_of_the_program_not_of_how_it_was_made(page):
    text = page.read_text(encoding="utf-8").lower()
    for word in ["the team", "stretch target", "closing note", "issue #", "团队", "扩展目标", "结项"]:
        assert word not in text, word
    assert not readme_links.stale_links(page.read_text(encoding="utf-8"))


PACKAGE = sorted(path.stem for path in (ROOT / "beyond").glob("*.py") if path.stem != "__init__")
MODULES = ["dqn", *(f"beyond.{name}" for name in PACKAGE)]


@pytest.mark.parametrize("module_name", MODULES)
def test_every_module_and_public_function_has_a_docstring(module_name):
    import importlib
    import inspect

    module = importlib.import_module(module_name)
    assert module.__doc__ and len(module.__doc__.strip().splitlines()) >= 2, module_name  # what the module is for
    for name, obj in vars(module).items():
        own = getattr(obj, "__module__", None) == module_name
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and own and not name.startswith("_"):
            assert inspect.getdoc(obj), name
            if inspect.isclass(obj) and module_name == "dqn":
                for method_name, method in vars(obj).items():
                    if inspect.isfunction(method) and not method_name.startswith("_"):
                        assert inspect.getdoc(method), f"{name}.{method_name}"


def test_dqn_py_names_its_blog_and_where_the_changes_are_listed():
    import dqn

    assert "Pytorch Note51" in dqn.__doc__ and "docs/differences.md" in dqn.__doc__
    assert (ROOT / "docs" / "differences.md").is_file()
