"""Datasets: declarative schemas, the built-in datasets and a loader for any table."""

from distributed_recourse.data.datasets import Dataset, load_dataset
from distributed_recourse.data.schema import FeatureSpace, FeatureSpec, Schema, SchemaError

__all__ = ["Dataset", "FeatureSpace", "FeatureSpec", "Schema", "SchemaError", "load_dataset"]
