"""Synthetic driving world: city map, scene planning, LiDAR and camera simulation, occupancy labels."""
