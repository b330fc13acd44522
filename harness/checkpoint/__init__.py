"""HF checkpoints on disk: the one safetensors reader (read) and the atomic sharded writer (write)."""

from harness.checkpoint.read import (DTYPES, INDEX, SINGLE, Checkpoint, TensorInfo, check_layers, config_facts,
                                     read_config, read_header, read_model)
from harness.checkpoint.write import SIDE_FILES, ShardWriter, copy_side_files, staged_output

__all__ = [
    "DTYPES", "INDEX", "SINGLE", "Checkpoint", "TensorInfo", "check_layers", "config_facts", "read_config", "read_header",
    "read_model",
    "SIDE_FILES", "ShardWriter", "copy_side_files", "staged_output",
]
