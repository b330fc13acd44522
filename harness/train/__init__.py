"""One training loop for every scale (accelerate), its modes, schedule and held-out scoring."""

from harness.train.evaluate import evaluate
from harness.train.loop import StepInfo, plan_steps, set_seed, train
from harness.train.modes import ALL_LINEAR, Freeze, Full, Lora, Mode, effective_state_dict, prepare
from harness.train.schedule import lr_at

__all__ = [
    "evaluate", "StepInfo", "plan_steps", "set_seed", "train", "ALL_LINEAR", "Freeze", "Full",
    "Lora", "Mode", "effective_state_dict", "prepare", "lr_at",
]
