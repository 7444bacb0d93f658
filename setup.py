"""perception_mtl: multi-task, multi-modal perception model zoo on MMEngine.

Dependencies are installed by scripts/install.sh (``make install``) with the pins in
requirements/constraints.txt: mmcv must be compiled against the installed torch, and
mmdet3d goes in without its declared open3d, which plain pip resolution cannot express.
"""

from setuptools import find_packages, setup

setup(
    name="perception_mtl",
    version="0.1.0",
    description="Multi-task, multi-modal perception model zoo (BEV detection, map, occupancy, "
    "face, camera calibration) on MMEngine",
    python_requires=">=3.10",
    packages=find_packages(include=["perception_mtl", "perception_mtl.*"]),
    include_package_data=True,
)
