# Head-pose evaluation of the MOS demo model on the AFLW2000-style split (one face per image, .mat
# labels: Pose_Para pitch/yaw/roll, pt3d_68), as MOS's AFLW2000 protocol: yaw/pitch/roll MAE on faces
# with every |angle| < 99. AFLW2000 has no face boxes: the ground-truth box is the extent of the 68
# landmarks (here enlarged by 20% per side), tighter than a detector's face box, so detections are
# matched at IoU 0.3 and only the pose MAE, NME and recall are meaningful here (not the AP).
#   python tools/create_data.py faces --out-dir data/synthetic_faces   (writes pose_eval/ too)
#   python tools/test.py configs/mos_face_pose_demo_aflw2000-eval.py work_dirs/mos_face_pose_demo/epoch_8.pth
# For the real AFLW2000-3D, point data_root at its folder of image*.jpg / image*.mat files.
_base_ = ["./mos_face_pose_demo.py"]

test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type="AFLW2000Dataset",
        data_root="data/synthetic_faces/pose_eval",
        box_expand=0.2,
        pipeline={{_base_.test_pipeline}},
        test_mode=True,
    )
)
test_evaluator = dict(type="FaceMetric", iou_thr=0.3, score_thr=0.5)
