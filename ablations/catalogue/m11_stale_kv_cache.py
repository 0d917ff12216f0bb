"""Mistake 11: a KV cache not updated (decoding attends to the current token's k/v only)."""
from ablations.audit import measurements
from ablations.audit.detectors import Detector
from ablations.catalogue.schema import LEAK, LOGIT_TOL, SHARE, Claim, Mistake
from ablations.science.rules import Effect, Invariant

MISTAKE = Mistake(
    "stale_kv_cache", 11, "KV cache not updated",
    claims=(
        Claim("cached generation differs from a full recompute", Invariant("cache_gap", LOGIT_TOL), source="lab"),
        Claim("generation ignores previous tokens: it cannot copy a span from its context (copy accuracy)",
              Effect("copy_accuracy", SHARE, "of tokens", higher=False)),
    ),
    probes=("cache", "copy"), symptom_plot="copy_accuracy",
    detector=Detector(measurements.cache_gap, LEAK, fires_above=True, calibrated=(0.0, 0.391)),
)
