"""Mistake 9: a training objective through argmax (it lives in the objective, `model/loss.py`)."""
from ablations.audit import measurements
from ablations.audit.detectors import Detector
from ablations.catalogue.schema import NATS, Claim, Mistake
from ablations.science.rules import Effect, Invariant

MISTAKE = Mistake(
    "argmax_gradient", 9, "Gradient through argmax",
    claims=(
        Claim("an objective through argmax has zero gradient", Invariant("zero_gradient", 0.5)),
        Claim("so nothing is learned (final validation loss)", Effect("val_loss", NATS, "nats/token")),
    ),
    # relative gradient: correct >= 1.06 (>= 0.045 with other mistakes), through argmax 0
    detector=Detector(measurements.gradient_size, 1e-6, fires_above=False, calibrated=(1.06, 0.0)),
)
