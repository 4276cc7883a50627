"""``check-data``: what each configured dataset folder holds, before any GPU hour is spent.

For every dataset: the reader runs as ``prepare`` would; what it counted is set beside the counts
the release's publishers state; then the files missing on disk, why rows would be rejected, and
the train / val / test sizes each protocol would give each task the config runs on the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from adaptor.data import manifest
from adaptor.data.prepare import MISSING_IMAGE, read_dataset
from adaptor.data.releases import PUBLISHED, release
from adaptor.errors import ManifestError, SettingsError
from adaptor.evaluate.fractions import PROTOCOLS
from adaptor.evaluate.splits import SPLITS, absent_units, mgca_splits, own_splits


@dataclass
class DatasetCheck:
    """What one dataset folder holds, and whether a run could start from it (``problems`` empty)."""

    name: str
    reader: str
    root: str
    release: str = ""
    problems: list[str] = field(default_factory=list)
    census: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    # (kind, reason, count) and (task, protocol, {split: samples} or why there is no split)
    rejected: list[tuple[str, str, int]] = field(default_factory=list)
    splits: list[tuple[str, str, dict[str, int] | str]] = field(default_factory=list)

    @property
    def missing_images(self) -> int:
        return sum(count for _, reason, count in self.rejected if reason == MISSING_IMAGE)


def dataset_tasks(config: dict[str, Any], name: str) -> list[str]:
    """The tasks the config runs on a dataset."""
    evaluate = config["evaluate"]
    wanted = {
        "pretrain": config["pretrain"]["dataset"] == name,
        "classification": name in evaluate["classification"]["datasets"],
        "segmentation": name in evaluate.get("segmentation", {}).get("datasets", []),
        "zeroshot": name in evaluate.get("zeroshot", {}).get("prompts", {}),
    }
    return [task for task, runs in wanted.items() if runs]


def _sizes(splits: dict[str, list[str]]) -> dict[str, int]:
    return {name: len(dict.fromkeys(splits[name])) for name in SPLITS}


def split_sizes(
    frame: pl.DataFrame, reader: str, task: str, absent: pl.DataFrame
) -> list[tuple[str, str, dict[str, int] | str]]:
    """(task, protocol, {split: samples}) for every protocol, or why the protocol has no split.
    Zero-shot trains nothing and scores the test split alone."""
    if task == "pretrain":
        return [(task, "official", _sizes(own_splits(frame)))]
    results: list[tuple[str, str, dict[str, int] | str]] = []
    for protocol in PROTOCOLS:
        try:
            splits = (
                own_splits(frame)
                if protocol == "strict"
                else mgca_splits(frame, reader, task, protocol, absent)[0]
            )
        except ValueError as error:
            results.append((task, protocol, str(error).split(": ", 1)[-1]))
            continue
        gone = set(absent["id"].to_list()) if protocol != "strict" else set()
        sizes = _sizes({name: [i for i in ids if i not in gone] for name, ids in splits.items()})
        results.append((task, protocol, sizes | ({"train": 0, "val": 0} if task == "zeroshot" else {})))
    return results


def check_dataset(
    name: str, entry: dict[str, Any], tasks: list[str], on_error: str, workers: int = 1
) -> DatasetCheck:
    """Read one dataset as ``prepare`` would and describe it; never raises on what the folder holds."""
    check = DatasetCheck(name, entry["reader"], entry["root"])
    try:
        check.release = release(entry["reader"], entry)
        records, info, rejects = read_dataset(name, entry["reader"], entry["root"], entry, workers)
        frame = manifest.build(records, info)
    except (FileNotFoundError, SettingsError, ManifestError) as error:
        check.problems.append(str(error))
        return check
    check.census, check.samples = dict(info.census), len(frame)
    table = rejects.frame()
    check.rejected = [tuple(row) for row in table.group_by("kind", "reason").len().sort(pl.all()).iter_rows()]
    errors = int((table["kind"] == "error").sum())
    if errors and on_error == "fail":
        check.problems.append(
            f"{errors} bad samples: prepare stops (on_error: fail); fix them or set on_error: skip"
        )
    if not len(frame):
        check.problems.append("no usable samples")
        return check
    absent = absent_units(frame, table)
    for task in tasks:
        check.splits += split_sizes(frame, entry["reader"], task, absent)
    return check


def _number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def format_check(check: DatasetCheck) -> str:
    """A plain-text table of one dataset's check."""
    lines = [f"{check.name} (reader {check.reader}, root {check.root})"]
    published: dict[str, int] = {}
    if check.release:
        published = PUBLISHED.get(check.release, {})
        known = "published counts beside" if published else "no published counts recorded here"
        lines.append(f"  release: {check.release} ({known})")
    if check.census:
        width = max(len(key) for key in [*check.census, *published])
        lines.append(f"  {'':{width}}  {'this folder':>12}  {'published':>12}")
        for key in dict.fromkeys([*check.census, *published]):
            lines.append(
                f"  {key:{width}}  {_number(check.census.get(key)):>12}  {_number(published.get(key)):>12}"
            )
        lines.append(
            f"  usable samples: {check.samples:,}; image files missing on disk: {check.missing_images:,}"
        )
    for kind, reason, count in check.rejected:
        lines.append(f"  rejected ({kind}): {count:,} x {reason}")
    if check.splits:
        lines.append("  splits (train / val / test):")
        for task, protocol, sizes in check.splits:
            shown = " / ".join(f"{sizes[s]:,}" for s in SPLITS) if isinstance(sizes, dict) else sizes
            lines.append(f"    {task:<15} {protocol:<11} {shown}")
    lines += [f"  PROBLEM: {problem}" for problem in check.problems]
    return "\n".join(lines)


def check_data(
    config: dict[str, Any], datasets: list[str] | None = None, workers: int = 1
) -> list[DatasetCheck]:
    """Check every configured dataset (or those named)."""
    wanted = datasets or list(config["datasets"])
    unknown = sorted(set(wanted) - set(config["datasets"]))
    if unknown:
        raise SettingsError(
            f"datasets {unknown} are not in the config's datasets {sorted(config['datasets'])}"
        )
    return [
        check_dataset(
            name, config["datasets"][name], dataset_tasks(config, name), config["on_error"], workers
        )
        for name in wanted
    ]
