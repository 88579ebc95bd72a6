"""griffe extension (mkdocs.yml, mkdocstrings ``extensions``): the docstrings cross-reference in Sphinx's
role syntax (``:class:`~gpuaug.FaceBatch```), which Markdown would print as it is; render each role as
its target in code (``FaceBatch``, the last part only where the role starts with ``~``)."""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj):`(~?)([^`]+)`")


def _plain(match: re.Match[str]) -> str:
    target = match[2]
    return f"`{target.rsplit('.', 1)[-1] if match[1] else target}`"


class SphinxRoles(Extension):
    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_plain, obj.docstring.value)
