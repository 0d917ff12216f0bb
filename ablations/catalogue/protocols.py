"""The confirmatory protocols, declared before their runs (docs/verdicts-and-statistics.md#the-confirmatory-protocol).
Every run the lab made before a protocol was declared is exploratory: it was looked at while the lab was designed."""
from ablations.catalogue.schema import Protocol

CONFIRMATORY = Protocol(
    name="confirmatory",
    question="Do the seed page's claims, and the lab's own, hold best against best at two budgets, on fresh seeds, "
             "decided as one family per source?",
    first_seed=1000,  # every exploratory run's seeds lie below (tests/test_protocols.py checks the committed ones)
    planned_on=("results/best_lr", "results/best_lr/shakespeare"),
    # Planned from both exploratory best_lr suites, finished (python -m ablations.protocol confirmatory --plan):
    # per mistake, the seeds its most demanding statistical claim asks for, within [min_seeds, max_seeds].
    seeds={"post_norm": 8, "no_residual": 8, "narrow_ffn": 16, "untied_embeddings": 16, "norm_wrong_axis": 8,
           "no_final_norm": 16, "position_overflow": 16, "padding_mask": 13, "argmax_gradient": 8, "tiny_vocab": 8,
           "stale_kv_cache": 8},
    # In 12 of the 22 exploratory grid runs a variant's best rate was an end of its grid, so "best" was not
    # bracketed there: one more rate at each end (1e-4..3e-2 at 8 layers, 3e-4..0.1 otherwise).
    widen_lr_grid=1,
)

PROTOCOLS = (CONFIRMATORY,)
