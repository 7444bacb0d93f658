"""GRADIENT calibration (FULLER and the task-weighting family), wired into MMEngine's training
step as optim wrappers. Not camera calibration: camera geometry lives in ``perception_mtl.structures``."""
