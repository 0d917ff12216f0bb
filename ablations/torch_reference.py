"""`python -m ablations.torch_reference [--out F]`: the PyTorch eager baseline of the benchmark's nanogpt-cpu row
(ablations/perf/torch_baseline.py), run by a Python that has torch."""
from ablations.perf.torch_baseline import main

if __name__ == "__main__":
    main()
