"""The RFT core as small pure functions, each switchable from the config through a registry.

- :mod:`advantages`: GRPO, Dr. GRPO, RLOO, REINFORCE++ and std scaling.
- :mod:`losses`: the clipped surrogate (clip-higher, dual-clip), KL estimators, loss aggregation,
  the entropy-bonus controller.
- :mod:`filtering`: the zero-variance group filter (DAPO's dynamic sampling builds on it).
- :mod:`curriculum`: AdaRFT, staged difficulty and offline pass-rate selection.
- :mod:`chord`: the CHORD auxiliary SFT loss weights.

docs/algorithms.md maps each switch to its paper, its formula and its default.
"""
