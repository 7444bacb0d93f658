# M³ViT-style multi-task ViT-MoE: every other block's MLP is a mixture of 16 experts (top-4),
# routed by one gate per task; one backbone forward per task; dense heads for seg / depth / edges.
# An expert is D wide (moe_mlp_ratio=1), so a token's 4 active experts hold as many parameters as
# a dense ViT MLP of ratio 4: the dense baseline (m3vit_dense-baseline_demo.py) matches them.
custom_hooks = [dict(type="MoEStatsHook", interval=16)]

tasks = ("seg", "depth", "edge")
model = dict(
    type="MultiTaskDensePredictor",
    tasks=tasks,
    trunk_mode="per_task",
    moe_loss_weight=0.01,
    data_preprocessor=dict(type="ImgDataPreprocessor", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
    backbone=dict(
        type="ViTMoE",
        img_size=64,
        patch_size=8,
        embed_dim=96,
        depth=6,
        num_heads=3,
        mlp_ratio=4.0,
        moe_every=2,
        moe_mlp_ratio=1.0,
        moe_cfg=dict(
            num_experts=16,
            top_k=4,
            act="gelu",
            expert_norm=False,
            router=dict(type="PerTaskRouter", gate_type="top_k_softmax", noise="learned"),
        ),
        out_indices=(1, 3, 5),
        feature_scales=(2.0, 1.0, 0.5),
    ),
    heads=dict(
        seg=dict(type="DenseSemSegHead", num_classes=5, channels=64),
        depth=dict(type="DenseDepthHead", min_depth=0.1, max_depth=40.0, channels=64),
        edge=dict(type="DenseEdgeHead", channels=64),
    ),
)
