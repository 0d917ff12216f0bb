"""Mistake 7: a learned position table of the training length, used on longer inputs."""
from ablations.audit import measurements
from ablations.audit.detectors import Detector
from ablations.catalogue.schema import NATS, Axis, Claim, Mistake, Study
from ablations.science.rules import Effect

MISTAKE = Mistake(
    "position_overflow", 7, "Position embedding length",
    claims=(
        Claim("a learned table sized to the training length degrades past it more than the correct model's "
              "positions (RoPE by default): loss past the training length minus loss within it",
              Effect("length_degradation", NATS, "nats/token")),
        Claim("... and more than sinusoidal positions, the page's other fix",
              Effect("length_degradation", NATS, "nats/token"), reference="sinusoidal"),
    ),
    probes=("length",), fixes={"sinusoidal": {"model.position": "sinusoidal"}}, symptom_plot="loss_by_position",
    refuses={"model.position": ("learned", "the correct variant's learned table would overflow too; "
                                           "valid choices: rope, sinusoidal")},
    # swap past / swap inside: RoPE and sinusoidal >= 0.119, clamped <= 8.1e-6
    detector=Detector(measurements.position_sight, 1e-3, fires_above=False, calibrated=(0.119, 8.1e-6)),
    studies=(
        Study("position_overflow_length", "How far past the training length does each position scheme "
              "(clamped learned table, sinusoidal, RoPE) hold?",
              (Axis("probe.length_factor", (1.5, 2.0, 3.0, 4.0)),)),
    ),
)
