"""Mistake 4: not tying the input and output embeddings (a separate output projection)."""
from ablations.audit import measurements
from ablations.audit.detectors import Detector
from ablations.catalogue.schema import NATS, Axis, Claim, Finding, Mistake, Study
from ablations.science.rules import Exactly, NoGain

WASTED = "those parameters are wasted: no gain from them (final validation loss)"

MISTAKE = Mistake(
    "untied_embeddings", 4, "Not tying embeddings",
    claims=(
        Claim("a separate output projection adds vocab_size·d_model parameters",
              Exactly("n_params", lambda cfg: cfg.vocab_size * cfg.d_model, "vocab_size*d_model")),
        Claim(WASTED, NoGain("val_loss", NATS, "nats/token")),
    ),
    literature=(
        Finding(WASTED, "Press & Wolf 2017, Using the Output Embedding to Improve Language Models",
                "tying the input and output embeddings lowers the perplexity of word-level LSTM language models "
                "(Penn Treebank, text8, ...) while removing vocab_size·d parameters: the untied ones buy nothing"),
    ),
    # exact counts: 1 (tied) or 2 (untied) parameters per vocabulary entry per d_model
    detector=Detector(measurements.parameters_per_token, 1.5, fires_above=True, calibrated=(1.0, 2.0)),
    studies=(
        Study("untied_embeddings_size", "On real text, where do separate output embeddings start to help or hurt, "
              "with characters and with BPE?",
              (Axis("model.d_model", (32, 64, 128)), Axis("data.tokenizer", ("char", "bpe"))),
              overrides=("data=shakespeare", "data.vocab_size=512")),
    ),
)
