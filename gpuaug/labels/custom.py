"""Labels of your own: per-sample vectors and classes, declared once with their rule under a horizontal flip.

A mirrored face swaps its left and right: blendshape ``eyeBlinkLeft`` becomes ``eyeBlinkRight``, an action unit
measured on one side moves to the other, an expression class "smirk, left" becomes "smirk, right". Nothing else
of the matrix (rotation, zoom, shift) changes such a label. So a label of your own is one of:

- :class:`FlipVector`: (D,) float32 per sample; on a flip ``v[perm] * sign`` (a permutation, optionally a sign
  per entry: a horizontal velocity or a yaw-like value changes sign), or unchanged (``perm`` None);
  :meth:`FlipVector.from_names` derives the permutation from entry names by swapping Left and Right, e.g. for
  ARKit's 52 blendshapes (:data:`ARKIT52`) in whatever order a capture tool writes them;
- :class:`ClassLabel`: one int64 class per sample; on a flip ``flip[c]`` (unchanged without a table);
- :class:`PointFlags`: one int64 flag per landmark that a data set ships (COFW's occlusion flags, say); on a flip
  re-indexed with the landmark flip table, like the points; occlusion flags are OR-ed into ``out.occluded``.

Declared with ``FaceAugment(config, labels=[...])``; a batch carries them in ``batch.labels`` (name -> (B, D) or
(B,)) and the step's output in ``out.labels``, re-indexed exactly on mirrored samples.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

import torch

from gpuaug.device_constants import constant
from gpuaug.errors import BatchError
from gpuaug.labels.flip_tables import resolve_flip_table

#: ARKit's 52 blendshapes (``ARFaceAnchor.BlendShapeLocation``) in the order of Apple's documentation.
ARKIT52 = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawLeft", "jawRight", "jawOpen", "mouthClose", "mouthFunnel",
    "mouthPucker", "mouthLeft", "mouthRight", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft", "mouthPressRight",
    "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "browDownLeft",
    "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff", "cheekSquintLeft",
    "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)  # fmt: skip


def _check_involution(name: str, table: Sequence[int], size: int, what: str) -> tuple[int, ...]:
    """``table`` as a tuple of ``size`` 0-based indices that is its own inverse; ValueError naming ``name``."""
    table = tuple(int(i) for i in table)
    if len(table) != size:
        raise ValueError(f"label {name!r}: its {what} has {len(table)} entries for {size}")
    try:  # the landmark flip tables' check: 0-based range, a permutation, its own inverse
        resolve_flip_table(table)
    except ValueError as exc:
        raise ValueError(f"label {name!r}: its {what} must be its own inverse (flipping twice gives the label "
                         f"back): {exc}") from None
    return table


def _check_name(name: str) -> None:
    if not name or not name.isidentifier():
        raise ValueError(f"a label's name must be a Python identifier (its key in batch.labels), got {name!r}")


@dataclass(frozen=True)
class FlipVector:
    """A per-sample vector of float32 entries (blendshapes, action units, a velocity) and its flip rule: on a
    horizontal flip entry i takes entry ``perm[i]`` times ``sign[i]``. ``perm`` must be its own inverse, and a
    sign must agree with its partner's (flipping twice gives the vector back); both are checked here.

    Args:
        name: its key in ``batch.labels`` (a Python identifier).
        size: D, entries per sample.
        perm: 0-based partner of each entry on a flip; None: unchanged.
        sign: +1 or -1 per entry, applied on a flip; None: all +1.
    """

    name: str
    size: int
    perm: tuple[int, ...] | None = None
    sign: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not (isinstance(self.size, int) and self.size >= 1):
            raise ValueError(f"label {self.name!r}: size must be an int >= 1, got {self.size!r}")
        perm = tuple(range(self.size)) if self.perm is None else _check_involution(self.name, self.perm, self.size,
                                                                                   "perm")
        object.__setattr__(self, "perm", None if self.perm is None else perm)
        if self.sign is not None:
            sign = tuple(float(v) for v in self.sign)
            if len(sign) != self.size or any(v not in (-1.0, 1.0) for v in sign):
                raise ValueError(f"label {self.name!r}: sign must be {self.size} values of +1 or -1, got {self.sign}")
            if any(sign[i] != sign[perm[i]] for i in range(self.size)):
                raise ValueError(f"label {self.name!r}: an entry and its flip partner need the same sign")
            object.__setattr__(self, "sign", sign)

    @classmethod
    def from_names(cls, name: str, names: Sequence[str]) -> FlipVector:
        """A vector whose entries are named ``names`` (e.g. :data:`ARKIT52`, in any order): on a flip each entry
        takes the one whose name has Left and Right swapped (``eyeBlinkLeft`` <-> ``eyeBlinkRight``, ``jawLeft``
        <-> ``jawRight``), and an entry without a side stays. ValueError for a side without its partner."""
        index = {n: i for i, n in enumerate(names)}
        if len(index) != len(names):
            raise ValueError(f"label {name!r}: entry names repeat")
        swap = {"Left": "Right", "Right": "Left", "left": "right", "right": "left"}
        perm = []
        for n in names:
            partner = re.sub(r"Left|Right|left|right", lambda m: swap[m.group(0)], n)
            if partner not in index:
                raise ValueError(f"label {name!r}: {n!r} has a side but no entry {partner!r}")
            perm.append(index[partner])
        return cls(name, len(names), tuple(perm))

    @property
    def shape(self) -> tuple[int, ...]:
        """Per-sample shape."""
        return (self.size,)

    #: The per-sample values' dtype.
    dtype: ClassVar[torch.dtype] = torch.float32

    def mirror(self, value: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
        """(B, size) float32 -> the same, mirrored where ``flipped`` (B,) bool."""
        if self.perm is None and self.sign is None:
            return value
        mirrored = value
        if self.perm is not None:
            mirrored = mirrored[:, constant(self.perm, value.device, torch.int64)]
        if self.sign is not None:
            mirrored = mirrored * constant(self.sign, value.device)
        return torch.where(flipped[:, None], mirrored, value)

    def usable(self, value: torch.Tensor) -> torch.Tensor:
        """(B,) bool: no inf (a NaN is a missing value; no sync)."""
        return ~torch.isinf(value).any(1)


@dataclass(frozen=True)
class ClassLabel:
    """One int64 class per sample (an expression, an identity) and its flip rule. A negative class is a sample
    without one (missing, kept as it is); a class of ``classes`` or more is a bad value: the sample comes out
    invalid.

    Args:
        name: its key in ``batch.labels`` (a Python identifier).
        classes: the number of classes; a class is in [0, classes).
        flip: class c becomes ``flip[c]`` on a horizontal flip (its own inverse); None: unchanged.
    """

    name: str
    classes: int
    flip: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not (isinstance(self.classes, int) and self.classes >= 1):
            raise ValueError(f"label {self.name!r}: classes must be an int >= 1, got {self.classes!r}")
        if self.flip is not None:
            object.__setattr__(self, "flip", _check_involution(self.name, self.flip, self.classes, "flip table"))

    @property
    def shape(self) -> tuple[int, ...]:
        """Per-sample shape (one class)."""
        return ()

    #: The per-sample values' dtype.
    dtype: ClassVar[torch.dtype] = torch.int64

    def mirror(self, value: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
        """(B,) int64 -> the same, mapped through the table where ``flipped`` (B,) bool (a missing class,
        negative, stays)."""
        if self.flip is None:
            return value
        table = constant(self.flip, value.device, torch.int64)
        return torch.where(flipped & (value >= 0), table[value.clamp(0, self.classes - 1)], value)

    def usable(self, value: torch.Tensor) -> torch.Tensor:
        """(B,) bool: the class is in range or missing (no sync)."""
        return value < self.classes


@dataclass(frozen=True)
class PointFlags:
    """Per-landmark flags a data set ships, (K,) int64 per sample: 1 set, 0 not set, -1 unknown (COFW marks
    each of its 29 points occluded or not). On a horizontal flip they move with the points. A value other than
    -1, 0 or 1 makes the sample invalid.

    Args:
        name: its key in ``batch.labels`` (a Python identifier).
        occlusion: occlusion flags: a set flag of an annotated landmark is OR-ed into ``out.occluded``, so
            training targets with ``occluded="drop"`` leave it out too.
        table: the landmark flip table the flags are re-indexed with; left None, the ``FaceAugment`` fills in
            its config's.
    """

    name: str
    occlusion: bool = True
    table: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)

    def for_layout(self, table: Sequence[int]) -> PointFlags:
        """These flags for the landmark flip table ``table`` (the augmentation's; checked there)."""
        return replace(self, table=tuple(int(i) for i in table))

    @property
    def shape(self) -> tuple[int, ...]:
        """Per-sample shape: one flag per landmark."""
        if self.table is None:
            raise ValueError(f"label {self.name!r}: point flags take K from a flip table: declare them in a "
                             "FaceAugment(config, labels=[...])")
        return (len(self.table),)

    #: The per-sample values' dtype.
    dtype: ClassVar[torch.dtype] = torch.int64

    def mirror(self, value: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
        """(B, K) int64 -> the same, re-indexed like the landmarks where ``flipped`` (B,) bool."""
        table = constant(self.table, value.device, torch.int64)
        return torch.where(flipped[:, None], value[:, table], value)

    def usable(self, value: torch.Tensor) -> torch.Tensor:
        """(B,) bool: every flag is -1, 0 or 1 (no sync)."""
        return ((value >= -1) & (value <= 1)).all(1)


#: A label of your own.
CustomLabel = FlipVector | ClassLabel | PointFlags


def for_layout(specs: Sequence[CustomLabel], table: Sequence[int]) -> tuple[CustomLabel, ...]:
    """``specs`` with every :class:`PointFlags` bound to the landmark flip table ``table``."""
    return tuple(s.for_layout(table) if isinstance(s, PointFlags) else s for s in specs)


def shipped_occlusion(specs: Sequence[CustomLabel], values: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """(B, K) bool: a landmark some occlusion :class:`PointFlags` of ``values`` (output labels) sets; None
    without such flags."""
    flags = [values[s.name] == 1 for s in specs if isinstance(s, PointFlags) and s.occlusion]
    return None if not flags else torch.stack(flags).any(0)


def check_custom(specs: Sequence[CustomLabel], labels: dict[str, torch.Tensor], batch_size: int,
                 device: torch.device) -> None:
    """BatchError unless ``labels`` (a batch's) are exactly the declared ``specs``, each (B, *shape) of its dtype
    on ``device`` (metadata only, no sync)."""
    declared = {s.name: s for s in specs}
    for name in labels.keys() - declared.keys():
        raise BatchError(f"labels.{name}", "is not declared: give FaceAugment(config, labels=[FlipVector(...) or "
                                           "ClassLabel(...)]) its flip rule")
    for name, spec in declared.items():
        if name not in labels:
            raise BatchError(f"labels.{name}", "is declared but the batch does not have it")
        value, shape = labels[name], (batch_size, *spec.shape)
        if tuple(value.shape) != shape or value.dtype != spec.dtype or value.device != device:
            raise BatchError(f"labels.{name}", f"expected {spec.dtype} of shape {shape} on {device}, found "
                                               f"{value.dtype} of shape {tuple(value.shape)} on {value.device}")


def custom_validity(specs: Sequence[CustomLabel], labels: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """(B,) bool: every declared label of the sample is usable (no inf, no class out of range); None without
    labels of your own (no sync)."""
    usable = [s.usable(labels[s.name]) for s in specs]
    return None if not usable else torch.stack(usable).all(0)


def apply_flips(specs: Sequence[CustomLabel], values: dict[str, torch.Tensor], flipped: torch.Tensor,
                valid: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each declared label of ``values`` (name -> (B, ...)) under the flip of its sample ((B,) bool); an invalid
    sample's ((B,) ``valid`` False) comes out missing: NaN, or class -1."""
    out = {}
    for s in specs:
        mirrored = s.mirror(values[s.name], flipped)
        keep = valid.view(-1, *[1] * (mirrored.dim() - 1))
        out[s.name] = torch.where(keep, mirrored, torch.nan if mirrored.is_floating_point() else -1)
    return out
