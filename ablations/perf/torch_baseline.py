"""The PyTorch eager baseline of the benchmark's nanogpt-cpu row, timed on this machine.

`pip install torch` (CPU build), then `python -m ablations.torch_reference` (its entry point): a nanoGPT-style model
(pre-norm blocks, GELU MLP of 4·d, tied embeddings, learned positions, fused causal attention),
4 layers, 4 heads, d_model 128, context 64, batch 12, 65 characters, AdamW, eager mode, on every
core. Prints the median step time over timed steps and writes it as JSON for the benchmark to read.
"""
from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn
from torch.nn import functional as F


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.norm_attn, self.norm_ffn = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv, self.proj = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)
        self.up, self.down = nn.Linear(d_model, 4 * d_model), nn.Linear(4 * d_model, d_model)

    def forward(self, x):  # x [B, T, D]
        b, t, d = x.shape
        q, k, v = (a.view(b, t, self.n_heads, -1).transpose(1, 2) for a in self.qkv(self.norm_attn(x)).split(d, -1))
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(attended)
        return x + self.down(F.gelu(self.up(self.norm_ffn(x)), approximate="tanh"))


class TinyGPT(nn.Module):
    def __init__(self, vocab: int, d_model: int, n_heads: int, n_layers: int, context: int):
        super().__init__()
        self.embed, self.positions = nn.Embedding(vocab, d_model), nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads) for _ in range(n_layers))
        self.norm_final = nn.LayerNorm(d_model)

    def forward(self, tokens):  # tokens [B, T] -> logits [B, T, V]
        x = self.embed(tokens) + self.positions(torch.arange(tokens.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.norm_final(x) @ self.embed.weight.T


def time_steps(steps: int, batch: int = 12, context: int = 64, vocab: int = 65) -> float:
    """Median seconds per AdamW training step, after 5 warm-up steps."""
    torch.manual_seed(0)
    model = TinyGPT(vocab, 128, 4, 4, context)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    data = torch.randint(0, vocab, (200_000,))
    times = []
    for step in range(steps + 5):
        starts = torch.randint(0, len(data) - context - 1, (batch,))
        windows = torch.stack([data[s:s + context + 1] for s in starts.tolist()])
        tic = time.perf_counter()
        loss = F.cross_entropy(model(windows[:, :-1]).reshape(-1, vocab), windows[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - tic)
    return sorted(times[5:])[steps // 2]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", default="torch_reference.json")
    args = parser.parse_args(argv)
    step_s = time_steps(args.steps)
    row = {"config": "nanogpt-cpu (PyTorch eager)", "torch": torch.__version__, "threads": torch.get_num_threads(),
           "step_ms": step_s * 1e3, "tokens_per_s": 12 * 64 / step_s}
    print(f"PyTorch {row['torch']} eager, {row['threads']} threads: {row['step_ms']:.2f} ms/step, "
          f"{row['tokens_per_s']:,.0f} tokens/s")
    with open(args.out, "w") as f:
        json.dump(row, f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
