"""The argument checks every zoo factory makes, in one place: sizes that must be positive integers, heads that must
divide the width, and names given as a sequence or one comma-separated string. Argument plumbing only: each
member's model is written apart from the others."""
from __future__ import annotations


def check_sizes(**sizes) -> None:
    """Each size a positive integer (checked in the order given), and n_heads dividing d_model."""
    for name, value in sizes.items():
        if not (isinstance(value, int) and value > 0):
            raise ValueError(f"{name}={value} must be a positive integer")
    if sizes["d_model"] % sizes["n_heads"]:
        raise ValueError(f"n_heads={sizes['n_heads']} must divide d_model={sizes['d_model']}")


def split_names(given) -> list[str]:
    """Names given as a sequence or set, or as one comma-separated string."""
    return [n.strip() for n in given.split(",") if n.strip()] if isinstance(given, str) else list(given)
