"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]
[--cfg-options k=v ...] [--launcher none|pytorch]``, or an ONNX export with the same metrics:
``python tools/test.py CONFIG --backend onnxruntime --onnx-dir DIR``; writes <work_dir>/test_metrics.json."""

from perception_mtl.apis.test import main

if __name__ == "__main__":
    main()
