"""Mistake 6: forgetting the final LayerNorm before the output projection."""
from ablations.audit import measurements
from ablations.audit.detectors import Detector
from ablations.catalogue.schema import DEEP, DEEP_LR_GRID, DEPTHS, NATS, Axis, Claim, Mistake, Study
from ablations.science.rules import Effect

MISTAKE = Mistake(
    "no_final_norm", 6, "Forgetting the final LayerNorm",
    claims=(
        Claim("unnormalised activations reach the output projection: the model trains worse (final validation loss)",
              Effect("val_loss", NATS, "nats/token")),
    ),
    settings=DEEP, lr_grid=DEEP_LR_GRID,
    # misfit of the logits as an affine function of the last hidden state / of it normalised token by token:
    # rounding over a misfit without a final norm (<= 0.024, bfloat16), a misfit over rounding with one (>= 15.1)
    detector=Detector(measurements.output_fit, 1.0, fires_above=False, calibrated=(15.1, 0.024)),
    studies=(
        Study("no_final_norm_depth", "Does a missing final norm start to hurt with depth?",
              (Axis("model.n_layers", DEPTHS),)),
    ),
)
