"""Environments for action policies: the ground-truth driving simulator and its learned world model.

Both implement gymnasium's vector API over action chunks (`mmrft.envs.vector`); train in the
world model, evaluate in the ground truth.
"""

from mmrft.registry import Registry

ENVS = Registry("environment")


def _register() -> None:
    from mmrft.envs.vector import DrivingVectorEnv
    from mmrft.envs.world_model_env import WorldModelVectorEnv

    ENVS.register("driving")(DrivingVectorEnv)
    ENVS.register("driving_world_model")(WorldModelVectorEnv)


_register()
