# Tiny deterministic CPU job for the kill -9 / resume test (tests/engine/test_kill_resume.py):
# the two-modality two-task net on 64 generated 16x16 samples, batch 4 (16 iterations an epoch),
# 3 epochs, with modality dropout so training draws from torch's global generator every step.
_base_ = ["../../../configs/grad_balance/grad_balance_two_task_ew.py"]

train_dataloader = dict(batch_size=4, dataset=dict(num_samples=64, grid_size=16))
val_dataloader = dict(batch_size=8, dataset=dict(num_samples=8, grid_size=16))
test_dataloader = val_dataloader
model = dict(fuser=dict(_delete_=True, type="AddFuser", in_channels=[16, 16], out_channels=32, modality_dropout=0.5))
max_epochs = 3
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type="CosineAnnealingLR", T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs),
]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(max_keep_ckpts=-1))
log_processor = dict(window_size=1)
