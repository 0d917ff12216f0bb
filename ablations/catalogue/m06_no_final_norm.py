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
    # |log scale ratio| correct <= 0.048, no final norm >= 0.243
    detector=Detector(measurements.scale_drift, 0.11, fires_above=True, calibrated=(0.048, 0.243)),
    studies=(
        Study("no_final_norm_depth", "Does a missing final norm start to hurt with depth?",
              (Axis("model.n_layers", DEPTHS),)),
    ),
)
