"""The README's and the guides' ```python blocks run, and the API reference covers ``gpuaug.__all__``.

Each page's blocks run in order in one namespace (a later block may use an earlier one's names), in a fresh
working directory holding a tiny version of the data the docs name: ``data/`` (synthetic npz videos, as
``python -m gpuaug synth data`` writes) and ``packed/`` (``python -m gpuaug pack data packed``). All pages
run in one child process (importing torch once), on the CPU, with the CPU render uncompiled
(``GPUAUG_COMPILE=0``: compiling would cost more than every block together; the pixels are the same to 1e-5,
``tests/test_staged_gather.py``), and as rank 0 of a one-process ``torchrun`` (the DDP blocks call
``init_process_group``). A block preceded by ``<!-- docs-test: skip (reason) -->`` is not run. Then
``docs/figures.py`` runs in the same process, and must make exactly the pictures committed in docs/figures/.

``python tests/test_docs.py WORKDIR RESULT.json PAGE...`` is the child process.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
#: The figure command, run after the pages in the same child process (its result under this key).
FIGURES = "docs/figures.py"
#: A fenced python block, with the docs-test comment on the line before it if there is one.
BLOCK = re.compile(r"^(?:<!--\s*docs-test:\s*(?P<directive>.*?)\s*-->\n)?```python\n(?P<code>.*?)^```$", re.M | re.S)


def blocks(page: Path) -> list[tuple[int, str, str | None]]:
    """(line number, code, directive or None) of every python block of ``page``."""
    text = page.read_text()
    return [(text.count("\n", 0, m.start("code")) + 1, m["code"], m["directive"]) for m in BLOCK.finditer(text)]


def name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def make_data(workdir: Path) -> None:
    """``data/``: 3 small synthetic videos of 16 frames (a clip of 8 at step 2 fits); ``packed/``: the same."""
    from gpuaug.load.packed import pack
    from gpuaug.synth import write_dataset

    write_dataset(workdir / "data", videos=3, frames=16, seed=0, sizes=((96, 128), (80, 80)))
    pack(workdir / "data", workdir / "packed", progress=False)


def run_pages(workdir: Path, pages: list[str]) -> dict[str, dict]:
    """Run each page's blocks in a copy of ``workdir``'s data; per page: blocks run, skipped, error text."""
    results = {}
    for page in pages:
        cwd = workdir / re.sub(r"\W", "_", page)
        shutil.copytree(workdir / "data", cwd / "data")
        shutil.copytree(workdir / "packed", cwd / "packed")
        os.chdir(cwd)
        namespace: dict = {"__name__": "__main__"}
        result = {"run": 0, "skipped": 0, "error": None, "seconds": 0.0}
        start = time.perf_counter()
        for line, code, directive in blocks(ROOT / page):
            if directive is not None and directive.startswith("skip"):
                result["skipped"] += 1
                continue
            try:
                # Blank lines first, so a traceback's line numbers are the page's own.
                exec(compile("\n" * (line - 1) + code, page, "exec"), namespace)
                result["run"] += 1
            except BaseException:  # a block's SystemExit too: report it as the page's failure
                result["error"] = f"the block at {page}:{line} failed:\n{traceback.format_exc()}"
                break
        result["seconds"] = round(time.perf_counter() - start, 2)
        results[page] = result
    return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def page_results(tmp_path_factory) -> dict[str, dict]:
    workdir = tmp_path_factory.mktemp("docs")
    out = workdir / "results.json"
    env = {**os.environ, "GPUAUG_COMPILE": "0", "CUDA_VISIBLE_DEVICES": "", "RANK": "0", "LOCAL_RANK": "0",
           "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, __file__, str(workdir), str(out), *map(name, PAGES)], env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"docs runner failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return json.loads(out.read_text())


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_code_blocks_run(page: Path, page_results: dict[str, dict]) -> None:
    result = page_results[name(page)]
    assert result["error"] is None, result["error"]
    assert result["run"] == sum(1 for *_, d in blocks(page) if d is None or not d.startswith("skip"))


def test_figures_command_makes_every_figure(page_results: dict[str, dict]) -> None:
    """``python docs/figures.py`` runs, and makes every picture in docs/figures/ (so none is hand-made or
    stale) and every one a page shows."""
    result = page_results[FIGURES]
    assert result["error"] is None, result["error"]
    committed = {p.name for p in (ROOT / "docs" / "figures").glob("*.png")}
    shown = {m for p in PAGES for m in re.findall(r"figures/([\w.-]+\.png)", p.read_text())}
    assert committed == set(result["files"]), "docs/figures/ differs from what docs/figures.py makes"
    assert shown <= committed, f"pages show figures that docs/figures.py does not make: {shown - committed}"


def test_skips_say_why() -> None:
    """A skipped block names its reason, and skips stay few (the point is that the docs run)."""
    directives = [(name(p), line, d) for p in PAGES for line, _, d in blocks(p) if d is not None]
    for page, line, directive in directives:
        assert re.fullmatch(r"skip \(.+\)", directive), f"{page}:{line}: write `skip (reason)`, got {directive!r}"
    total = sum(len(blocks(p)) for p in PAGES)
    assert len(directives) <= total // 4, f"{len(directives)} of {total} blocks skipped"


def test_block_parser_finds_blocks_and_directives(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("text\n```python\na = 1\n```\n\n<!-- docs-test: skip (needs CUDA) -->\n```python\nb = 2\n```\n"
                    "```bash\nls\n```\n")
    assert blocks(page) == [(3, "a = 1\n", None), (8, "b = 2\n", "skip (needs CUDA)")]


def test_api_reference_covers_every_public_name() -> None:
    import gpuaug

    documented = set(re.findall(r"^::: gpuaug\.(\w+)\s*$", (ROOT / "docs" / "api.md").read_text(), re.M))
    assert set(gpuaug.__all__) <= documented, f"missing from docs/api.md: {sorted(set(gpuaug.__all__) - documented)}"


def test_readme_is_a_front_page() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail into docs/"
    commands = [ln.split("#")[0].strip() for ln in lines[:8] if ln.startswith("make ")]
    assert commands[:2] == ["make demo", "make test"], "the README opens with `make demo` and `make test`"


def run_figures(workdir: Path) -> dict:
    """``docs/figures.py`` into ``workdir/figures``: the files it wrote, or its error."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_figures", ROOT / "docs" / "figures.py")
    os.chdir(workdir)
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.main(str(workdir / "figures"))
    except BaseException:
        return {"error": traceback.format_exc(), "files": []}
    return {"error": None, "files": sorted(p.name for p in (workdir / "figures").iterdir())}


if __name__ == "__main__":
    workdir, out, *pages = sys.argv[1:]
    make_data(Path(workdir))
    results = run_pages(Path(workdir), pages)
    results[FIGURES] = run_figures(Path(workdir))
    Path(out).write_text(json.dumps(results, indent=1))


#: Characters of a code line that fit a code block of the site at 1280 px without scrolling sideways.
CODE_WIDTH = 72


def test_code_lines_fit_the_page() -> None:
    """Every line of every code block of the site's pages fits without sideways scrolling."""
    long = [f"{name(p)}: {line!r}" for p in PAGES if p.parent.name == "docs" or "docs" in p.parts
            for block in re.findall(r"```[^\n]*\n(.*?)```", p.read_text(), re.S)
            for line in block.splitlines() if len(line) > CODE_WIDTH]
    assert not long, f"{len(long)} code lines over {CODE_WIDTH} characters:\n" + "\n".join(long[:20])


def _documented_parameters(obj) -> set[str]:
    """The names an object's docstring documents under "Args:" or "Attributes:" (Google style)."""
    doc = inspect.getdoc(obj) or ""
    names = set()
    for section in re.findall(r"^(?:Args|Attributes):\n((?:[ \t]+.*\n?|\n)+)", doc, re.M):
        names |= set(re.findall(r"^[ \t]{4}(\w+)(?: \(.*?\))?:", section, re.M))
    return names


def test_api_entries_document_every_parameter() -> None:
    """Every entry of the API reference has a parameters table: each parameter of its signature is documented
    under Args (or Attributes), and a module shown there has a docstring."""
    import importlib

    missing = {}
    for entry in re.findall(r"^::: (gpuaug[\w.]*)\s*$", (ROOT / "docs" / "api.md").read_text(), re.M):
        module, _, attr = entry.rpartition(".")
        try:
            obj = importlib.import_module(entry)
        except ImportError:
            obj = getattr(importlib.import_module(module), attr)
        if inspect.ismodule(obj):
            assert (obj.__doc__ or "").strip(), f"{entry} has an entry but no docstring"
            continue
        if not callable(obj):
            continue
        try:
            signature = inspect.signature(obj)
        except (TypeError, ValueError):
            continue
        wanted = {p.name for p in signature.parameters.values() if p.name not in ("self", "cls")
                  and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        if wanted - _documented_parameters(obj):
            missing[obj.__qualname__] = sorted(wanted - _documented_parameters(obj))
    assert not missing, missing
