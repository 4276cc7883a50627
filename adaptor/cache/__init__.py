"""The embedding cache: one Zarr v3 group per (dataset, encoder), keyed by sample id and identity."""
