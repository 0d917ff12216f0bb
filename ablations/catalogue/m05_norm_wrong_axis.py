"""Mistake 5: LayerNorm statistics over the sequence axis instead of the features."""
from ablations.audit import measurements
from ablations.audit.detectors import Detector
from ablations.catalogue.schema import LEAK, LOGIT_TOL, NATS, Claim, Mistake
from ablations.science.rules import Effect, Invariant

MISTAKE = Mistake(
    "norm_wrong_axis", 5, "LayerNorm over the wrong axis",
    claims=(
        Claim("statistics over the sequence axis leak the future: logits at t change when tokens after t change",
              Invariant("causal_leak", LOGIT_TOL), source="lab"),
        Claim("the leak lets the model cheat: its validation loss falls below the correct model's",
              Effect("val_loss", NATS, "nats/token", higher=False), source="lab"),
        Claim("scored honestly, each position from its prefix alone, the leaking model is worse than the correct one",
              Effect("prefix_val_loss", NATS, "nats/token"), source="lab"),
    ),
    probes=("causality", "cache", "prefix"), symptom_plot="causal_leak",
    detector=Detector(measurements.future_leak, LEAK, fires_above=True, calibrated=(0.0, 0.296)),
)
