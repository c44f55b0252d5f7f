"""Train / validation / test splits that never put one source unit on two sides, seeded and deterministic.

Validation chooses checkpoints and stops training early; test is scored once, at the end, by the best
checkpoint. A *group* is the unit that must stay whole: a CT volume (its slices, flipped or mirrored, are
near-copies), a photo (Roboflow's three augmentations of it), a patient case, a radiograph.

- :func:`split_groups` shuffles the sorted unique group names with ``numpy.random.default_rng(seed)`` and
  takes the first ``round(test_fraction * groups)`` as test, the next ``round(val_fraction * groups)`` as
  validation, the rest as training. A fraction above zero gets at least one group; training keeps at
  least one. The result depends only on the set of names, the fractions and the seed, never on the order
  the files were found in.
- :func:`split_items` applies that to items through a ``group_of`` function.
- :func:`stratified_holdout` carves a held-out part with the same share of every stratum (Oxford-IIIT Pet:
  validation from ``trainval`` with each breed in proportion), largest remainders rounding the shares.

The defaults everywhere are ``val_fraction = 0.15``, ``test_fraction = 0.15``, ``seed = 0``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from neuralsight.errors import ConfigError, DataError

T = TypeVar("T")

VAL_FRACTION = 0.15
TEST_FRACTION = 0.15
SEED = 0
SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Splits(Generic[T]):
    """Three disjoint parts of a dataset.

    Attributes:
        train, val, test: the items (file pairs, case names...) of each part.
        unit: what no two parts share (``volume``, ``photo``, ``case``, ``image``...).
        method: one line saying how the split was made (for summaries and reports).
    """

    train: list[T]
    val: list[T]
    test: list[T]
    unit: str = "item"
    method: str = ""

    def __getitem__(self, split: str) -> list[T]:
        if split not in SPLIT_NAMES:
            raise KeyError(f"split must be one of {', '.join(SPLIT_NAMES)}, got {split!r}")
        return getattr(self, split)

    def sizes(self) -> dict[str, int]:
        return {name: len(self[name]) for name in SPLIT_NAMES}


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """ConfigError unless both fractions lie in [0, 1) and leave something to train on."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"data.{name} = {value} must be at least 0 and below 1")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction:g} leaves "
                          "nothing to train on", "keep their sum below 1 (the defaults are 0.15 each)")


def _share(n: int, fraction: float) -> int:
    return max(1, round(fraction * n)) if fraction > 0 else 0


def split_groups(groups: Iterable[str], val_fraction: float = VAL_FRACTION, test_fraction: float = TEST_FRACTION,
                 seed: int = SEED, unit: str = "group") -> Splits[str]:
    """Assign whole groups to train / val / test (see the module doc); each part's names sorted.

    Raises:
        DataError: too few groups for the parts asked for.
    """
    check_fractions(val_fraction, test_fraction)
    names = sorted(set(groups))
    n = len(names)
    n_test, n_val = _share(n, test_fraction), _share(n, val_fraction)
    needed = 1 + (n_val > 0) + (n_test > 0)
    if n < needed:
        raise DataError(f"cannot split {n} {unit}(s) into train, validation and test: need at least {needed}",
                        "add more data, check data.group_pattern, or set a fraction to 0")
    while n_val + n_test > n - 1:        # small sets: shrink the larger held-out part, keep one of each
        if n_test >= n_val:
            n_test -= 1
        else:
            n_val -= 1
    order = [names[i] for i in np.random.default_rng(seed).permutation(n)]
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    method = (f"by {unit}, seeded (seed {seed}): {len(train)} / {len(val)} / {len(test)} {unit}s for "
              f"train / val / test (fractions {1 - val_fraction - test_fraction:g} / {val_fraction:g} / "
              f"{test_fraction:g})")
    return Splits(sorted(train), sorted(val), sorted(test), unit, method)


def split_items(items: Sequence[T], group_of: Callable[[T], str], val_fraction: float = VAL_FRACTION,
                test_fraction: float = TEST_FRACTION, seed: int = SEED, unit: str = "group") -> Splits[T]:
    """Items split by :func:`split_groups` over ``group_of(item)``; items keep their input order."""
    parts = split_groups((group_of(item) for item in items), val_fraction, test_fraction, seed, unit)
    side = {g: name for name in SPLIT_NAMES for g in parts[name]}
    out: dict[str, list[T]] = {name: [] for name in SPLIT_NAMES}
    for item in items:
        out[side[group_of(item)]].append(item)
    return Splits(out["train"], out["val"], out["test"], unit, parts.method)


def stratified_holdout(items: Sequence[T], stratum_of: Callable[[T], Hashable], fraction: float,
                       seed: int = SEED) -> tuple[list[T], list[T]]:
    """``(kept, held_out)`` with ``round(fraction * len(items))`` held out, each stratum in proportion.

    Every stratum gives ``floor(fraction * size)`` items; the rest of the total goes to the strata with
    the largest remainders (ties: in sorted stratum order). Within a stratum the items are drawn by one
    ``numpy.random.default_rng(seed)`` permutation per stratum, strata visited in sorted order. Both
    lists keep the input order.
    """
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"data.val_fraction = {fraction} must be at least 0 and below 1")
    by_stratum: dict[Hashable, list[int]] = {}
    for i, item in enumerate(items):
        by_stratum.setdefault(stratum_of(item), []).append(i)
    strata = sorted(by_stratum, key=str)
    total = min(len(items) - 1, _share(len(items), fraction)) if len(items) > 1 else 0
    exact = {s: fraction * len(by_stratum[s]) for s in strata}
    take = {s: int(np.floor(exact[s])) for s in strata}
    by_remainder = sorted(strata, key=lambda s: -(exact[s] - take[s]))     # stable: ties keep sorted order
    for s in by_remainder[: max(0, total - sum(take.values()))]:
        take[s] += 1
    rng = np.random.default_rng(seed)
    held: set[int] = set()
    for s in strata:
        members = by_stratum[s]
        held.update(members[j] for j in rng.permutation(len(members))[: take[s]])
    return [x for i, x in enumerate(items) if i not in held], [x for i, x in enumerate(items) if i in held]
