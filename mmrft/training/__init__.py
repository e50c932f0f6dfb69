"""Training stages: SFT and GRPO of vision-language policies; world model, BC and GRPO of action policies."""

from mmrft.registry import Registry
from mmrft.training.driving import ActionBCStage, ActionGRPOStage, WorldModelStage
from mmrft.training.grpo import GRPOTrainer
from mmrft.training.sft import SFTTrainer

STAGES = Registry("training stage")
STAGES.register("grpo")(GRPOTrainer)
STAGES.register("sft")(SFTTrainer)
STAGES.register("world_model")(WorldModelStage)
STAGES.register("action_bc")(ActionBCStage)
STAGES.register("action_grpo")(ActionGRPOStage)

__all__ = ["GRPOTrainer", "SFTTrainer", "STAGES"]
