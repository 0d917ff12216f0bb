"""Mistake 7: a learned position table of the training length, used on longer inputs."""
from ablations.audit import measurements
from ablations.audit.detectors import Detector
from ablations.catalogue.schema import NATS, Axis, Claim, Finding, Mistake, Study
from ablations.science.rules import Effect

THAN_SINUSOIDAL = "... and more than sinusoidal positions, the page's other fix"

MISTAKE = Mistake(
    "position_overflow", 7, "Position embedding length",
    claims=(
        Claim("a learned table sized to the training length degrades past it more than the correct model's "
              "positions (RoPE by default): loss past the training length minus loss within it",
              Effect("length_degradation", NATS, "nats/token")),
        Claim(THAN_SINUSOIDAL, Effect("length_degradation", NATS, "nats/token"), reference="sinusoidal"),
    ),
    literature=(
        Finding(THAN_SINUSOIDAL, "Press, Smith & Lewis 2022, Train Short, Test Long (ALiBi)",
                "sinusoidal positions extrapolate poorly: perplexity rises soon past the training length; rotary "
                "positions hold somewhat longer, and neither matches ALiBi (WikiText-103); a "
                "learned table has no rows past the training length at all",
                predicts=None),
    ),
    probes=("length",), fixes={"sinusoidal": {"model.position": "sinusoidal"}}, symptom_plot="loss_by_position",
    refuses={"model.position": ("learned", "the correct variant's learned table would overflow too; "
                                           "valid choices: rope, sinusoidal")},
    # swap past / swap inside: RoPE and sinusoidal >= 0.143, clamped <= 4.2e-6 (float32 rounding: 8.1e-6 in another run)
    detector=Detector(measurements.position_sight, 1e-3, fires_above=False, calibrated=(0.143, 4.21e-06)),
    studies=(
        Study("position_overflow_length", "How far past the training length does each position scheme "
              "(clamped learned table, sinusoidal, RoPE) hold?",
              (Axis("probe.length_factor", (1.5, 2.0, 3.0, 4.0)),)),
        Study("position_overflow_budget_depth",
              "On real text, does the clamped table's extra degradation past the training length (0.77 nats more "
              "than RoPE in the suite, ~0.04 in an independent 8-layer, 400-step implementation) depend on the "
              "training budget or the depth?",
              (Axis("steps", (400, 1500)), Axis("model.n_layers", (2, 8))),
              overrides=("data=shakespeare", "train.lr=3e-3"),
              exploratory="declared after the suite's Shakespeare result and an independent implementation's "
                          "disagreed; the question is why"),
    ),
)
