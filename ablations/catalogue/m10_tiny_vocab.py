"""Mistake 10: a vocabulary too small for the text (it lives in the data: the broken variant's tokenizer is given
`data.tiny_vocab_size` symbols, 16 by default, for a 64-symbol text)."""
from ablations.audit import measurements
from ablations.audit.detectors import Detector
from ablations.catalogue.schema import BITS, Axis, Claim, Mistake, Study
from ablations.science.rules import Effect, Invariant

MISTAKE = Mistake(
    "tiny_vocab", 10, "Vocabulary too small for the tokenizer",
    claims=(
        Claim("many <unk> tokens", Invariant("unk_rate", 0.0)),
        Claim("poor performance (bits per byte, each <unk> charged the cost of naming its character)",
              Effect("bits_per_byte", BITS, "bits/byte")),
    ),
    probes=("vocab",), symptom_plot="unk_rate",
    broken={"data.vocab_size": "${data.tiny_vocab_size}"},  # Mistake 10: its corpus, tokenized with too few symbols
    # full character vocabulary 0, 16 characters 0.219; one <unk> in 1000 is already lossy
    detector=Detector(measurements.unknown_tokens, 1e-3, fires_above=True, calibrated=(0.0, 0.219)),
    studies=(
        Study("tiny_vocab_size", "How small can the vocabulary get before <unk> costs bits per byte?",
              (Axis("data.tiny_vocab_size", (8, 16, 32, 48, 64)),)),
    ),
)
