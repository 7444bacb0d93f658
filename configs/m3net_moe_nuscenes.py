# M3Net with the task-routed mixture-of-experts BEV decoder at full nuScenes size (camera + LiDAR; detection,
# map segmentation, occupancy; FULLER at the fuser output). See configs/m3net/README.md.
_base_ = ["./m3net/m3net_moe_swint-lss_voxel0075_mafi_8xb4-20e_nus.py"]
