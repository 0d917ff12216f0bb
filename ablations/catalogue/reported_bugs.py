"""Beyond the 11: bugs people report on public issue trackers that can be probed at random initialisation, as a group
of checks apart from the seed page's 11 mistakes. `python -m ablations.check` prints them as their own section
after the 11 (and writes them under "reported_bugs" in --json); a check that fires counts as a detected mistake.

Each entry names the kind of bug and the public reports it comes from, and says how the audit sees it: its own
check (a measurement of ablations/audit/reported.py and a rule, a `Detector`), "caught by detector N" of the 11
(no duplicate measurement), or why the audit cannot see it. Each seen bug has a planted negative control in
ablations/audit/zoo/pure_jax_gpt.py (`bugs=`, one tagged line `# Reported bug: ...` beside the correct code); tests:
tests/test_reported_bugs.py; readings: docs/auditing-a-model.md, "Beyond the 11: bugs people report".

Rules: the three consistency checks compare two computations that must agree exactly and read a difference beyond
rounding relative to the context effect, as detectors 5, 8 and 11 do, with their threshold (schema.LEAK); the label
shift reads a distance relative to how far apart the shifts lie, with the same threshold (a wrong shift reads >= 0.5
by construction); weight decay fires on any decayed norm gain or bias (> 0). None is tuned on its controls."""
from __future__ import annotations

import dataclasses

from ablations.audit import reported
from ablations.audit.detectors import Detector
from ablations.catalogue.schema import LEAK


@dataclasses.dataclass(frozen=True)
class ReportedBug:
    """One kind of reported bug. Exactly one of: `detector` (its own check), `caught_by` (the number of the seed
    page's mistake whose detector catches it), `unprobed` (why the audit cannot see it). `controls`: the names of
    its planted negative controls in ablations/audit/zoo/pure_jax_gpt.py (`bugs=`)."""
    name: str
    catches: str  # one line: the kind of bug
    reports: tuple[str, ...]  # "owner/repo#number"
    detector: Detector | None = None
    caught_by: int | None = None
    unprobed: str = ""
    controls: tuple[str, ...] = ()

    def __post_init__(self):
        if sum((self.detector is not None, self.caught_by is not None, bool(self.unprobed))) != 1:
            raise ValueError(f"reported bug {self.name}: give exactly one of detector, caught_by, unprobed")
        if not self.reports:
            raise ValueError(f"reported bug {self.name}: name the public reports it comes from")
        if self.unprobed and self.controls:
            raise ValueError(f"reported bug {self.name}: a bug the audit cannot see has no control to fire on")


REPORTED_BUGS = (
    ReportedBug(
        "causal_mask_refactor", "a decoder whose attention mask lets positions see later tokens after a refactor",
        ("huggingface/transformers#48745",), caught_by=5,
        controls=("bidirectional_mask", "causal_mask_off_by_one")),
    ReportedBug(
        "padded_decode_positions", "cached decoding of left-padded prompts with one shared cache position as every "
                                   "row's position ids", ("unslothai/unsloth#3699",), caught_by=11,
        controls=("shared_cache_position",)),
    ReportedBug(
        "one_token_is_causal", "a one-token query under an is_causal kernel, whose mask is aligned top-left, so "
                               "cached decoding sees only the first key", ("lucidrains/x-transformers#187",),
        caught_by=11, controls=("top_left_causal_decode",)),
    ReportedBug(
        "chunked_cache_continuation", "a multi-token chunk continuing from a KV cache under a square mask that "
                                      "ignores the cached keys", ("meta-llama/llama#899",),
        unprobed="AuditModel.generate prefills a prompt and then decodes one token at a time: the interface has no "
                 "call that feeds a multi-token chunk into a cache that already holds keys"),
    ReportedBug(
        "right_padding", "the logits of real tokens change when the batch is right-padded (position ids computed "
                         "as if padding were on the left)",
        ("huggingface/transformers#29419", "huggingface/open-r1#421"),
        detector=Detector(reported.right_padding_gap, LEAK, fires_above=True), controls=("left_padding_positions",)),
    ReportedBug(
        "batch_size", "a row's logits depend on the other rows of its batch or on its size (statistics over the "
                      "batch axis)", ("huggingface/transformers#2401", "bilylee/SiamFC-TensorFlow#36"),
        detector=Detector(reported.batch_gap, LEAK, fires_above=True), controls=("batch_statistics",)),
    ReportedBug(
        "eval_dropout", "dropout active in evaluation: the same input gives other logits on every call",
        ("huggingface/transformers#2627", "Coderx7/SimpleNet#2"),
        detector=Detector(reported.repeat_gap, LEAK, fires_above=True), controls=("dropout_in_eval",)),
    ReportedBug(
        "label_shift", "labels shifted by one too few (each token predicts itself) or too many (the token after "
                       "next) in the training loss",
        ("huggingface/transformers#27517", "huggingface/transformers#46897", "huggingface/transformers#32944"),
        detector=Detector(reported.label_shift, LEAK, fires_above=True),
        controls=("labels_unshifted", "labels_shifted_twice")),
    ReportedBug(
        "loss_padding_mask", "a training loss that counts padding tokens as targets",
        ("huggingface/trl#1625", "axolotl-ai-cloud/axolotl#2227"),
        unprobed="AuditModel.loss(params, tokens) takes no padding mask: the interface cannot hand the loss padded "
                 "rows and say which tokens are pads"),
    ReportedBug(
        "decayed_norms", "weight decay applied to norm gains and biases, not to the weight matrices alone",
        ("karpathy/minGPT#23", "Lightning-AI/lit-llama#254", "ServiceNow/Fast-LLM#545"),
        detector=Detector(reported.decayed_norms, 0.0, fires_above=True), controls=("decay_everything",)),
)
