"""Writers of nuScenes-format data and info files."""
