"""Mistake 8: attention mask broadcasting (no per-sequence padding mask, one mask for the whole batch)."""
from ablations.audit import measurements
from ablations.audit.detectors import Detector
from ablations.catalogue.schema import LEAK, LOGIT_TOL, NATS, Axis, Claim, Mistake, Study
from ablations.science.rules import Effect, Invariant

MISTAKE = Mistake(
    "padding_mask", 8, "Attention mask broadcasting",
    claims=(
        Claim("batched inference on left-padded sequences gives wrong outputs (logits differ from each sequence alone)",
              Invariant("padding_gap", LOGIT_TOL)),
        Claim("the loss on left-padded batches is worse", Effect("padded_val_loss", NATS, "nats/token"),
              source="lab"),
    ),
    probes=("padding",), symptom_plot="padding_gap",
    detector=Detector(measurements.padding_gap, LEAK, fires_above=True, calibrated=(0.0, 0.951)),
    studies=(
        Study("padding_mask_share", "Does the damage of a missing padding mask grow with the share of padding?",
              (Axis("probe.padding_share", (0.125, 0.25, 0.5, 0.75)),)),
    ),
)
