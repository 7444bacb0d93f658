"""The nuScenes schema constants agree with the libraries that define them (devkit, mmdet3d)."""

from mmdet3d.datasets import NuScenesDataset
from mmdet3d.evaluation.metrics.nuscenes_metric import NuScenesMetric
from nuscenes.eval.detection.constants import ATTRIBUTE_NAMES, DETECTION_NAMES
from nuscenes.nuscenes import NuScenes

from perception_mtl.datasets.converters.nuscenes_info_converter import CLASSES
from perception_mtl.datasets.converters.nuscenes_schema import (
    ATTRIBUTES,
    CATEGORIES,
    DETECTION_CLASS_OF_CATEGORY,
    OBJECT_CATEGORIES,
    TABLES,
)
from perception_mtl.synthetic.driving.object_catalog import CLASS_SPECS
from perception_mtl.testing.tiny_nuscenes import CATEGORY_OF_CLASS, write_tiny_nuscenes_db


def test_detection_classes_are_the_libraries():
    assert DETECTION_CLASS_OF_CATEGORY == NuScenesMetric.NameMapping
    assert set(DETECTION_CLASS_OF_CATEGORY) <= OBJECT_CATEGORIES and len(OBJECT_CATEGORIES) == 23
    assert sorted(set(DETECTION_CLASS_OF_CATEGORY.values())) == sorted(DETECTION_NAMES)
    assert CLASSES == NuScenesDataset.METAINFO["classes"]
    assert sorted(name for name, _ in ATTRIBUTES) == sorted(ATTRIBUTE_NAMES)
    assert len({name for name, _ in CATEGORIES}) == len(CATEGORIES) == 32


def test_synthetic_and_tiny_categories_map_to_their_classes():
    # The synthetic catalogue's hand-picked sizes are per category; its detection class is the devkit's.
    expected = {"vehicle.car": "car", "vehicle.bus.rigid": "bus", "human.pedestrian.child": "pedestrian"}
    for category, name in expected.items():
        assert CLASS_SPECS[category].detection_name == name
    assert {spec.detection_name for spec in CLASS_SPECS.values()} == set(DETECTION_NAMES)
    assert all(DETECTION_CLASS_OF_CATEGORY[c] == name for name, c in CATEGORY_OF_CLASS.items())


def test_tables_are_the_devkit_tables(tmp_path):
    write_tiny_nuscenes_db(str(tmp_path))
    nusc = NuScenes(version="v1.0-mini", dataroot=str(tmp_path), verbose=False)
    assert tuple(nusc.table_names) == TABLES
    assert len(nusc.sample) == 6 and len(nusc.sample_annotation) == 6 * 2 * len(CATEGORY_OF_CLASS)
