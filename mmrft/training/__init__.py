"""Training stages (SFT, GRPO) over one shared loop."""

from mmrft.registry import Registry
from mmrft.training.grpo import GRPOTrainer
from mmrft.training.sft import SFTTrainer

STAGES = Registry("training stage")
STAGES.register("grpo")(GRPOTrainer)
STAGES.register("sft")(SFTTrainer)

__all__ = ["GRPOTrainer", "SFTTrainer", "STAGES"]
