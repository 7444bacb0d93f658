"""Export to ONNX: ``python tools/export_onnx.py CONFIG CHECKPOINT --out-dir DIR [--tasks det,map,occ]
[--opset N] [--verify] [--fixed-rig] [--sparse TASK]``; writes the graphs and DIR/manifest.json."""

from perception_mtl.apis.export import main

if __name__ == "__main__":
    main()
