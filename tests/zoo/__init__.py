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
