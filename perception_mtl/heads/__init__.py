"""Task heads (det3d, bev_seg, occupancy, face_pose, camera_calib) and their losses/coders."""
