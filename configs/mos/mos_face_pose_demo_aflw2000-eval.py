# Head-pose evaluation of the MOS demo model on the AFLW2000-style split (one face per image, .mat pose
# labels; faces with every |angle| < 99, as MOS's protocol). AFLW2000 has no face boxes: the ground-truth
# box is the 68 landmarks' extent enlarged by 20 %, so matching is at IoU 0.3 and only pose MAE, NME and
# recall are meaningful here.
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
