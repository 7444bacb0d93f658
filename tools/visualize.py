"""Draw a config's samples as PNGs: ``python tools/visualize.py CONFIG [CHECKPOINT] --out DIR [--samples N]
[--split train|val|test]``. Ground truth only without a checkpoint. The work is done in
perception_mtl.visualization.visualize."""

from perception_mtl.visualization.visualize import main

if __name__ == "__main__":
    main()
