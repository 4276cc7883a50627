"""The workflow's configuration outside Snakemake: the same files, merged and validated the same way.

For commands a user runs before the DAG (``check-data``): config files merge in order, later
values over earlier ones (as ``snakemake --configfile a.yaml b.yaml``), and the schema fills the
defaults, so the command sees exactly the settings the rules would.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from adaptor.errors import ConfigError

SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"


def merge(base: dict, update: dict) -> dict:
    """``update`` over ``base``, recursively for mappings (Snakemake's rule for several config files)."""
    merged = dict(base)
    for key, value in update.items():
        merged[key] = (
            merge(merged[key], value)
            if isinstance(value, dict) and isinstance(merged.get(key), dict)
            else value
        )
    return merged


def load(paths: Sequence[str | Path], schema: str | Path = SCHEMA) -> dict:
    """The merged, validated config of ``paths``, with the schema's defaults filled in."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    config: dict = {}
    for path in paths:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"{path}: cannot read the config ({error})") from error
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a config file holds a mapping of settings at its top level")
        config = merge(config, loaded)
    if not Path(schema).exists():
        raise ConfigError(f"{schema}: the config schema is missing (run from a checkout of the repository)")
    try:
        validate(config, str(schema), set_default=True)
    except WorkflowError as error:
        raise ConfigError(f"{', '.join(map(str, paths))}: {error}") from error
    return config
