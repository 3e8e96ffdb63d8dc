"""cluster.yaml checked as `ray up` checks it before it contacts AWS (offline, no boto3), and
the config options that take a run to a cluster."""

from importlib.metadata import requires
from pathlib import Path

import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from distributed_recourse.config import ConfigError, RunConfig

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def cluster():
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_cluster_yaml_passes_rays_own_validation(cluster):
    prepared = prepare_config(cluster)  # merged with Ray's AWS defaults, as `ray up` does
    validate_config(prepared)
    assert prepared["provider"]["type"] == "aws"
    assert prepared["available_node_types"][prepared["head_node_type"]]["max_workers"] == 0


def test_rays_validation_would_catch_a_mistake(cluster):
    broken = yaml.safe_load(yaml.safe_dump(cluster))
    broken["available_node_types"]["cpu_worker"]["resource"] = {"trainer_slot": 1}
    with pytest.raises(Exception, match="resource"):
        validate_config(prepare_config(broken))


def test_nodes_run_this_checkout_on_the_pinned_ray(cluster):
    ray_pin = next(r for r in requires("distributed-recourse") if r.startswith("ray["))
    assert "default" in ray_pin and ray_pin.endswith(f"=={ray.__version__}")
    assert cluster["docker"]["image"].startswith(f"rayproject/ray:{ray.__version__}-")
    (remote, local), = cluster["file_mounts"].items()
    assert local == "."
    assert any(command.endswith(f"pip install -e {remote}") for command in cluster["setup_commands"])


def test_workers_offer_one_trainer_slot_each(cluster):
    workers = [t for name, t in cluster["available_node_types"].items()
               if name != cluster["head_node_type"]]
    assert workers and all(t["resources"] == {"trainer_slot": 1} for t in workers)


def test_storage_is_an_absolute_path_or_a_uri():
    for storage in ("s3://bucket/runs", "/mnt/shared/runs", None):
        assert RunConfig.from_dict({"train": {"storage": storage}}).train.storage == storage
    with pytest.raises(ConfigError, match="train.storage"):
        RunConfig.from_dict({"train": {"storage": "runs/tune"}})
