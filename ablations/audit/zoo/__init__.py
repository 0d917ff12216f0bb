"""The zoo: transformer language models written independently of the lab's `model/gpt.py`, in other conventions,
each with the catalogue's 11 mistakes plantable one tagged line at a time, to measure how the audit
(`python -m ablations.check`) does off the model it was calibrated on. tests/test_zoo.py audits them;
docs/auditing-a-model.md ("The zoo") gives the readings.

- `pure_jax_gpt`: jax.numpy + jax.random only, no biases, RMSNorm, SwiGLU, grouped-query attention, a learned
  position table that raises past max_len, fan-in init, KV-cache greedy decoding with a prefill.
- `parallel_gpt`: Flax NNX, parallel attention and FFN from one LayerNorm, biases everywhere, multi-query
  attention, ALiBi positions.
- `hf_models`: Hugging Face Flax causal LMs at tiny random configs (the `hf` extra), mutants by config or patch.
"""
import importlib.util

from . import hf_models, parallel_gpt, pure_jax_gpt


def members() -> dict:
    """The zoo as the calibration reads it (ablations.audit.calibration): name -> (factory, the mistakes it can
    carry, the mistakes its library builds into the correct model); the Hugging Face families where transformers is
    installed."""
    zoo = {"pure_jax_gpt": (pure_jax_gpt.factory, pure_jax_gpt.MISTAKES, ()),
           "parallel_gpt": (parallel_gpt.factory, parallel_gpt.MISTAKES, ())}
    if importlib.util.find_spec("transformers") is not None:
        zoo.update({family: (getattr(hf_models, family), hf_models.plantable(family),
                             tuple(m for f, m in hf_models.BUILT_IN if f == family)) for family in hf_models.FAMILIES})
    return zoo
