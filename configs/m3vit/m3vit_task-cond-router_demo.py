# m3vit_demo.py with M³ViT's alternative routing: one gate shared by all tasks, reading
# concat(token, learned task embedding).
_base_ = ["./m3vit_demo.py"]

model = dict(
    backbone=dict(
        moe_cfg=dict(router=dict(_delete_=True, type="TaskConditionedRouter", task_embed_dim=32, noise="learned"))
    )
)
