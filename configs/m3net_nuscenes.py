# The users' flagship command, `python tools/train.py configs/m3net_nuscenes.py`: M3Net at full nuScenes
# size (camera + LiDAR; detection, map segmentation, occupancy; FULLER). See configs/m3net/README.md.
_base_ = ["./m3net/m3net_swint-lss_voxel0075_mafi_tcs_8xb4-20e_nus.py"]
