"""Downstream evaluation at label fractions: subsets, heads on frozen features, metrics."""
