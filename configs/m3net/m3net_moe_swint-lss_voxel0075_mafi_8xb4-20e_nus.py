# M3Net at full nuScenes size with a task-routed mixture-of-experts BEV decoder in place of per-task channel
# scaling: SECOND's 2 x 5 convolutions shared, an MoE feed-forward (16 experts, top 4, one gate per task)
# after each stage, SECONDFPN -> 512; the decoder runs once per task on the fused map.
_base_ = ["./m3net_swint-lss_voxel0075_mafi_tcs_8xb4-20e_nus.py"]

model = dict(
    task_scaling=None,
    decoder=dict(
        _delete_=True,
        backbone=dict(
            type="MoEBEVDecoder",
            backbone={{_base_.model.decoder.backbone}},
            neck={{_base_.model.decoder.neck}},
            num_experts=16,
            top_k=4,
            mlp_ratio=1.0,
        ),
    ),
)
custom_hooks = [dict(type="MoEStatsHook", interval=50)]
