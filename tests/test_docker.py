"""docker/: the images install through the project's own path (scripts/install.sh, make), never ad hoc.

No Docker engine runs here, so the Dockerfiles are parsed, and scripts/install.sh is run with a stand-in
interpreter that records the pip commands it is given.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GPU, CPU = ROOT / "docker" / "Dockerfile", ROOT / "docker" / "Dockerfile.cpu"
# Installing Python packages any other way than scripts/install.sh.
AD_HOC = re.compile(r"\bpip3?\s+install\b|-m\s+pip\b|\bconda\b|\bmamba\b|\buv\s+(pip|add|sync)\b|easy_install")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(m[1].upper(), m[2].strip()) for m in re.finditer(r"^\s*(\w+)\s+(.*)$", joined, re.M)]


def project_install(run: str) -> bool:
    """Whether a RUN line is the project's install: scripts/install.sh, or a make target (which calls it)."""
    return "scripts/install.sh" in run or run.split()[0] == "make"


def args_of(path: Path, kind: str) -> list[str]:
    return [a for k, a in instructions(path) if k == kind]


def defaults(path: Path) -> dict[str, str]:
    """ARG and ENV values, later ones winning."""
    values: dict[str, str] = {}
    for kind, arg in instructions(path):
        if kind in ("ARG", "ENV"):
            values.update(re.findall(r"(\w+)=(\S+)", arg))
    return values


@pytest.mark.parametrize("path", [GPU, CPU], ids=["gpu", "cpu"])
def test_packages_come_only_from_the_install_script(path: Path) -> None:
    runs = args_of(path, "RUN")
    assert not [r for r in runs if AD_HOC.search(r)], "a RUN line installs Python packages itself"
    steps = instructions(path)
    copy = [i for i, (k, a) in enumerate(steps) if k == "COPY" and a.split()[0] == "."]
    install = [i for i, (k, a) in enumerate(steps) if k == "RUN" and project_install(a)]
    assert install and copy and copy[0] < install[0]  # the script runs on the copied source tree


def test_gpu_image_gets_cuda_torch_kornia_and_dali() -> None:
    values = defaults(GPU)
    base = args_of(GPU, "FROM")[0].replace("${CUDA_IMAGE}", values.get("CUDA_IMAGE", ""))
    assert re.match(r"(nvidia/cuda:12\.|pytorch/pytorch:)", base), base
    assert re.fullmatch(r"https://download\.pytorch\.org/whl/cu12\d+", values["TORCH_INDEX_URL"])
    assert values["TORCH_SPEC"].startswith("torch==")
    (install,) = [r for r in args_of(GPU, "RUN") if "scripts/install.sh" in r]
    assert "TORCH_INDEX_URL=" in install and "TORCH_SPEC=" in install
    assert "dali" in install.split("scripts/install.sh", 1)[1].split()[1].split(",")


def test_cpu_image_runs_make_test_through_the_makefile_install() -> None:
    assert json.loads(args_of(CPU, "CMD")[-1]) == ["make", "test"]
    assert defaults(CPU)["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    makefile = (ROOT / "Makefile").read_text()
    venv = re.search(r"^VENV\s*\?=\s*(\S+)", makefile, re.M)[1]
    stamp = re.search(r"^STAMP\s*:=\s*(\S+)", makefile, re.M)[1].replace("$(VENV)", venv)
    recipe = re.search(r"^\$\(STAMP\):.*\n((?:\t.*\n)+)", makefile, re.M)[1]
    assert "scripts/install.sh" in recipe
    assert any(r.split() == ["make", stamp] for r in args_of(CPU, "RUN"))  # the Makefile's install step


def test_demo_installs_the_core_alone() -> None:
    """make demo's set-up is scripts/install.sh with no extras (no DALI, triton, test or bench tools: the demo
    imports none of them); make test's adds them."""
    makefile = (ROOT / "Makefile").read_text()
    prerequisite = re.search(r"^demo:\s*(\S+)", makefile, re.M)[1]
    recipe = re.search(rf"^{re.escape(prerequisite)}:.*\n((?:\t.*\n)+)", makefile, re.M)[1]
    assert re.search(r'scripts/install\.sh \$\(VENV\) ""\s*$', recipe, re.M), recipe
    test_stamp = re.search(r"^test:\s*(\S+)", makefile, re.M)[1]
    recipe = re.search(rf"^{re.escape(test_stamp)}:.*\n((?:\t.*\n)+)", makefile, re.M)[1]
    assert {"dali", "test"} <= set(recipe.split("install.sh $(VENV) ", 1)[1].split()[0].split(","))


@pytest.mark.parametrize("extras", ["", "dali"])
def test_install_script_extras(tmp_path: Path, extras: str) -> None:
    """EXTRAS "" installs gpuaug alone (no "[]"), "dali" gpuaug[dali]."""
    log = tmp_path / "calls"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    python.chmod(0o755)
    env = {**os.environ, "PYTHON": str(python), "TORCH_SPEC": "torch==9.9", "TORCH_INDEX_URL": ""}
    subprocess.run(["bash", str(ROOT / "scripts" / "install.sh"), "-", extras], env=env, check=True)
    gpuaug_call = log.read_text().splitlines()[1]
    assert gpuaug_call.endswith(f"-e {ROOT}[dali]" if extras else f"-e {ROOT}")


@pytest.mark.parametrize("index", ["", "https://download.pytorch.org/whl/cu128"])
def test_install_script_takes_torch_from_the_given_index(tmp_path: Path, index: str) -> None:
    log = tmp_path / "calls"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    python.chmod(0o755)
    env = {**os.environ, "PYTHON": str(python), "TORCH_SPEC": "torch==9.9", "TORCH_INDEX_URL": index}
    subprocess.run(["bash", str(ROOT / "scripts" / "install.sh"), "-", "dali"], env=env, check=True)
    torch_call, gpuaug_call = log.read_text().splitlines()[:2]
    assert torch_call.endswith("torch==9.9") and ("--index-url " + index in torch_call) == bool(index)
    assert "--index-url" not in gpuaug_call and gpuaug_call.endswith(f"{ROOT}[dali]")
