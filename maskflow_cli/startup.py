"""Start-up cost: keep einops from importing ``torch._dynamo`` when nothing is compiled.

einops 0.8 registers its functions with ``torch._dynamo`` the first time it meets a torch tensor
(``einops._torch_specific``, imported by its torch backend). Importing ``torch._dynamo`` costs about as
much as importing torch itself, and einops means to skip the registration from torch 2.8 on, but
compares version strings, so "2.13" counts as older than "2.8". ``defer_einops_dynamo`` puts a stand-in
for that module in ``sys.modules``: einops' backend import then finds it and registers nothing, and the
first attribute anyone reads from it (``einops.layers.torch`` does) imports the real module in its place.
"""

from __future__ import annotations

import importlib
import sys
import types

_NAME = "einops._torch_specific"


class _Deferred(types.ModuleType):
    def __getattr__(self, attribute: str):
        if sys.modules.get(_NAME) is self:
            del sys.modules[_NAME]
        return getattr(importlib.import_module(_NAME), attribute)


def defer_einops_dynamo() -> None:
    """Install the stand-in unless einops' torch module is already loaded (then it is too late)."""
    sys.modules.setdefault(_NAME, _Deferred(_NAME))
