"""Reading, validating and regularising sensor data (polars for CSV, numpy inside)."""

from tsforge.data.csv import from_frame, from_pandas, from_polars, parse_freq, read_csv
from tsforge.data.folder import PreparedFile, csv_files, read_folder
from tsforge.data.frame import SensorFrame
from tsforge.data.timestamps import parse_timestamps
from tsforge.data.validate import DataPolicy, ValidationReport, prepare

__all__ = ["DataPolicy", "PreparedFile", "SensorFrame", "ValidationReport", "csv_files",
           "from_frame", "from_pandas", "from_polars", "parse_freq", "parse_timestamps",
           "prepare", "read_csv", "read_folder"]
