"""Mistake 2: blocks without residual additions."""
from ablations.audit import measurements
from ablations.audit.detectors import Detector
from ablations.catalogue.schema import DEEP, DEEP_LR_GRID, DECADE, NATS, Axis, Claim, Finding, Mistake, Study
from ablations.science.rules import Effect

DOES_NOT_TRAIN = "a deep transformer without residuals does not train (final validation loss)"

MISTAKE = Mistake(
    "no_residual", 2, "Missing residual connections",
    literature=(
        Finding(DOES_NOT_TRAIN, "He et al. 2016, Deep Residual Learning for Image Recognition",
                "deeper plain networks (no shortcuts) reach a higher training error than shallower ones, the "
                "degradation problem, while the same depth with identity shortcuts trains well (ImageNet, CIFAR-10)"),
    ),
    claims=(
        Claim(DOES_NOT_TRAIN, Effect("val_loss", NATS, "nats/token")),
        Claim("its gradients vanish towards the input (log10 first/last block gradient norm, median over logged steps)",
              Effect("grad_depth_ratio_median", DECADE, "decades", higher=False)),
    ),
    settings=DEEP, lr_grid=DEEP_LR_GRID, symptom_plot="grad_depth_ratio_median",
    # slope of a block's output on its input: a residual add carries the input, ~1; without one, ~0. The threshold,
    # halfway, is set from that meaning; calibrated=: the calibration across the lab's GPT and the zoo
    detector=Detector(measurements.stream_carry, 0.5, fires_above=False, calibrated=(0.83, 0.0746)),
    studies=(
        Study("no_residual_depth", "At what depth does a missing residual stop training?",
              (Axis("model.n_layers", (1, 2, 4, 8, 16)),)),
    ),
)
