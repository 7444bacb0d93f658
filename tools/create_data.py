"""Prepare data: ``python tools/create_data.py synthetic --out-dir DIR [--scenes N] [--samples-per-scene M]
[--seed S]`` or ``python tools/create_data.py nuscenes --root DIR --version v1.0-mini|v1.0-trainval
--out-dir DIR``. The work is done in perception_mtl.apis.create_data."""

from perception_mtl.apis.create_data import main

if __name__ == "__main__":
    main()
