"""The lab's GPT: a Flax decoder with one switch per classic mistake. Knows nothing of ablations."""
from model.config import GPTConfig
from model.generate import generate, make_forward
from model.gpt import GPT, init_cache, n_params, positions_from_mask
from model.loss import next_token_loss
from model.mistakes import Mistakes, names_of_all

__all__ = ["GPT", "GPTConfig", "Mistakes", "generate", "init_cache", "make_forward", "n_params",
           "names_of_all", "next_token_loss", "positions_from_mask"]
