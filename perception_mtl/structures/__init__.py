from .sensor_calibration import SensorCalibration

__all__ = ["SensorCalibration"]
