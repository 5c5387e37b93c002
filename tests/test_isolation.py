"""Installing nnsweep changes nothing for another Hydra app in the same environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import PROJECT_ROOT

APP = """
import json, sys
import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="app")
def main(cfg):
    def names(node, prefix=""):
        for key, value in node.items():
            path = f"{prefix}{key}"
            yield path
            if isinstance(value, dict):
                yield from names(value, path + "/")

    print(json.dumps({
        "config_store": list(names(ConfigStore.instance().repo)),
        "search_path": [dict(s) for s in HydraConfig.get().runtime.config_sources],
        "modules": sorted(sys.modules),
        "greeting": cfg.greeting,
    }))


main()
"""


def _run_other_app(tmp_path: Path) -> dict:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "app.yaml").write_text("greeting: hello\n")
    (tmp_path / "app.py").write_text(APP)
    done = subprocess.run(
        [sys.executable, "app.py", "hydra.run.dir=out", "hydra/sweeper=basic"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_another_hydra_app_sees_nothing_of_nnsweep(tmp_path: Path) -> None:
    seen = _run_other_app(tmp_path)
    assert seen["greeting"] == "hello"
    # Plugin discovery did run (and found nnsweep's plugin modules)...
    assert "hydra_plugins.nnsweep_plugins.sweeper" in seen["modules"]
    # ...but imported nothing of nnsweep, pandas or the kernel.
    heavy = [m for m in seen["modules"] if m.split(".")[0] in {"nnsweep", "pandas", "pyarrow"}]
    assert heavy == []
    assert not [name for name in seen["config_store"] if "nnsweep" in name]
    paths = " ".join(f"{s['provider']} {s['path']}" for s in seen["search_path"])
    assert "nnsweep" not in paths
    assert str(PROJECT_ROOT) not in paths and str(tmp_path) in paths


def test_the_plugin_module_imports_only_hydra(tmp_path: Path) -> None:
    code = (
        "import sys, json\n"
        "import hydra_plugins.nnsweep_plugins.sweeper, hydra_plugins.nnsweep_plugins.search_path\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    modules = json.loads(done.stdout)
    assert not [m for m in modules if m.split(".")[0] in {"nnsweep", "pandas", "numpy"}]


def test_no_private_hydra_or_loky_api_is_used() -> None:
    private = ("_internal", "._executor", "_parse_config")
    for folder in ("nnsweep", "hydra_plugins"):
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert not [name for name in private if name in text], path


def test_data_does_not_import_config_or_hydra(tmp_path: Path) -> None:
    code = "import sys, json\nimport nnsweep.train.data\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    modules = json.loads(done.stdout)
    assert "nnsweep.config" not in modules and "hydra" not in modules
