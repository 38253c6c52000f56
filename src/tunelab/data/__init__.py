"""Data: sources, splits, preprocessing and batched augmentation."""

from tunelab.data._dataset import Dataset, Task

# [idx exports]
# [augment exports]
# [files exports]

__all__ = ["Dataset", "Task"]
# [idx __all__]
# [augment __all__]
# [files __all__]
