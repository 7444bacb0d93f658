# Few-minute CPU demo of the M³ViT multi-task ViT-MoE (E=16, top-4, one gate per task):
# 768 rendered training scenes, 4 epochs, per-task metrics on 128 validation scenes.
_base_ = ["./m3vit_vit-moe-e16k4_1xb16-12e_synthdense.py"]

max_epochs = 4
train_dataloader = dict(dataset=dict(num_samples=768))
val_dataloader = dict(dataset=dict(num_samples=128))
test_dataloader = val_dataloader
param_scheduler = [
    dict(type="LinearLR", start_factor=0.05, by_epoch=False, begin=0, end=50),
    dict(type="CosineAnnealingLR", T_max=max_epochs, eta_min=1e-5, by_epoch=True, begin=0, end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(logger=dict(interval=16))
