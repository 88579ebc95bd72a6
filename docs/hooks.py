"""mkdocs hooks (mkdocs.yml ``hooks:``): serve the committed measurement runs of ``bench/results/`` in the site
at ``bench/results/``, so the speed page shows their plots and links their records without copies in docs/."""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for path in sorted(RESULTS.iterdir()):
        if path.is_file():
            files.append(File.generated(config, f"bench/results/{path.name}", abs_src_path=str(path)))
    return files
