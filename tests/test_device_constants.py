"""device_constants.constant: one tensor per (values, device, dtype), reused; inside a compiled graph the values
are the graph's own constant, without Dynamo's warning about tracing through a cache."""

from __future__ import annotations

import warnings

import torch

import gpuaug.device_constants
from gpuaug.device_constants import constant


def test_made_once_per_values_device_and_dtype() -> None:
    a = constant((1.0, 2.0), "cpu")
    assert a is constant((1.0, 2.0), torch.device("cpu"))
    assert a.dtype == torch.float32 and a.tolist() == [1.0, 2.0]
    assert constant((1.0, 2.0), "cpu", torch.float64) is not a
    assert constant(((1, 2), (3, 4)), "cpu", torch.int64).tolist() == [[1, 2], [3, 4]]


def test_in_a_compiled_graph_without_the_cache(monkeypatch) -> None:
    """Inside a compiled graph ``constant`` never reaches the lru_cache'd maker (Dynamo would ignore the cache,
    and warn on every first compile), and the graph computes with the right values; outside it, it does."""
    calls: list[bool] = []
    cached = gpuaug.device_constants._cached

    def recorded(*args):
        calls.append(torch.compiler.is_compiling())
        return cached(*args)

    monkeypatch.setattr(gpuaug.device_constants, "_cached", recorded)
    torch._dynamo.reset()

    @torch.compile(fullgraph=True, backend="eager")
    def scaled(x: torch.Tensor) -> torch.Tensor:
        return x * constant((1.0, 2.0, 3.0), x.device)

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert scaled(torch.ones(3)).tolist() == [1.0, 2.0, 3.0]
    assert calls == []
    constant((1.0, 2.0, 3.0), "cpu")
    assert calls == [False]
