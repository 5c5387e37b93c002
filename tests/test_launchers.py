"""The same sweep through other Hydra launchers gives bit-identical tables.

Ray: a real head node started with ``ray start --head``, inside a fresh network namespace
(``unshare -n``) whose only interface is loopback, so every port the cluster opens is bound
to 127.0.0.1 and no traffic can leave. SLURM: a real controller and compute node (slurmctld,
slurmd, munged) in the same kind of namespace. Each cluster is stopped on the way out, even
when the sweep fails.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import PROJECT_ROOT, run_cli

pytestmark = pytest.mark.slow

SWEEP = ["-m", "layers=4,8-8,6", "n_seeds=3", "iterations=500", "log_every=100"]


def _tables(sweep_dir: Path) -> list[pd.DataFrame]:
    runs = pd.read_parquet(sweep_dir / "runs.parquet").drop(columns=["wall_seconds"])
    return [runs, pd.read_parquet(sweep_dir / "curves.parquet")]


def _joblib_reference(tmp_path: Path) -> Path:
    sweep_dir = tmp_path / "joblib" / "sweep"
    done = run_cli([*SWEEP, f"results_dir={tmp_path / 'joblib'}", f"hydra.sweep.dir={sweep_dir}"])
    assert done.returncode == 0, done.stderr
    return sweep_dir


def _assert_identical(left: Path, right: Path) -> None:
    for a, b in zip(_tables(left), _tables(right), strict=True):
        pd.testing.assert_frame_equal(a, b)


@pytest.mark.skipif(
    importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None,
    reason="needs the [slurm] extra",
)
def test_submitit_local_gives_the_joblib_tables(tmp_path: Path) -> None:
    reference = _joblib_reference(tmp_path)
    sweep_dir = tmp_path / "submitit" / "sweep"
    done = run_cli(
        [
            *SWEEP,
            "hydra/launcher=submitit_local",
            f"results_dir={tmp_path / 'submitit'}",
            f"hydra.sweep.dir={sweep_dir}",
            # The default folder has one sub-folder per job id (%j), which submitit's local
            # controller can try to open a log in before its parent has made it: a race seen
            # here once under load. A flat folder exists before any job starts.
            f"hydra.launcher.submitit_folder={sweep_dir / '.submitit'}",
        ]
    )
    assert done.returncode == 0, done.stderr
    _assert_identical(reference, sweep_dir)


def _ray_available() -> bool:
    return (
        importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is not None
        and shutil.which("unshare") is not None
        and shutil.which("ip") is not None
        and os.geteuid() == 0
    )


@pytest.mark.skipif(not _ray_available(), reason="needs the [ray] extra, root, unshare and ip")
def test_ray_cluster_on_loopback_gives_the_joblib_tables(tmp_path: Path) -> None:
    reference = _joblib_reference(tmp_path)
    results = tmp_path / "ray"
    ray = Path(sys.executable).with_name("ray")
    port = 6391
    sweep = shlex.join(
        [
            sys.executable,
            "-m",
            "nnsweep",
            *SWEEP,
            "hydra/launcher=ray_cluster",
            f"hydra.launcher.ray.init.address=127.0.0.1:{port}",
            f"results_dir={results}",
            f"hydra.sweep.dir={results / 'sweep'}",
            "progress=false",
        ]
    )
    script = f"""
set -eu
ip link set lo up
export RAY_USAGE_STATS_ENABLED=0
# Ray 2.59+ turns token authentication on for clusters it calls local: the head and the sweep
# (and its workers) share one token through the environment, as on a real cluster.
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN={secrets.token_hex(32)}
trap '{ray} stop --force >/dev/null 2>&1 || true' EXIT
{ray} start --head --node-ip-address=127.0.0.1 --port={port} --include-dashboard=false \
    --num-cpus=2 --disable-usage-stats >/dev/null
ss -ltnH | awk '{{print $4}}' > {tmp_path / "listening.txt"}
{sweep}
"""
    done = subprocess.run(
        ["unshare", "-n", "bash", "-c", script],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    listening = (tmp_path / "listening.txt").read_text().split()
    assert listening and all(
        address.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:", "[::1]:")) for address in listening
    ), listening
    _assert_identical(reference, results / "sweep")


def _slurm_available() -> bool:
    tools = ("slurmctld", "slurmd", "munged", "sinfo", "unshare", "ip", "mount")
    return (
        importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is not None
        and all(shutil.which(tool) for tool in tools)
        and os.geteuid() == 0
    )


SLURM_CONF = """\
ClusterName=nnsweep
SlurmctldHost=node(127.0.0.1)
NodeName=node NodeAddr=127.0.0.1 CPUs=2 RealMemory=4000 State=UNKNOWN
PartitionName=cpu Nodes=node Default=YES MaxTime=INFINITE State=UP
AuthType=auth/munge
AuthInfo=socket={munge_socket}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={state}/ctld
SlurmdSpoolDir={state}/d
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
"""


@pytest.mark.skipif(
    not _slurm_available(),
    reason="needs the [slurm] extra, root, and Debian's slurm-wlm and munge (.ci/run installs)",
)
def test_slurm_cluster_on_loopback_gives_the_joblib_tables(tmp_path: Path) -> None:
    """A real SLURM controller and compute node, in namespaces of their own.

    The network namespace has only loopback; the UTS and mount namespaces give the node the
    host name ``node`` and an /etc/hosts that resolves it, without touching the machine's own.
    """
    reference = _joblib_reference(tmp_path)
    state = tmp_path / "slurm"
    for folder in ("ctld", "d", "munge"):
        (state / folder).mkdir(parents=True)
    munge_socket = state / "munge" / "socket"
    conf = state / "slurm.conf"
    conf.write_text(SLURM_CONF.format(state=state, munge_socket=munge_socket))
    (state / "hosts").write_text("127.0.0.1 localhost node\n")
    key = state / "munge" / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o400)
    results = tmp_path / "slurm_results"
    sweep_dir = results / "sweep"
    sweep = shlex.join(
        [
            sys.executable,
            "-m",
            "nnsweep",
            *SWEEP,
            "hydra/launcher=slurm",
            "hydra.launcher.mem_gb=1",
            "hydra.launcher.timeout_min=10",
            f"hydra.launcher.submitit_folder={sweep_dir / '.submitit'}",
            f"results_dir={results}",
            f"hydra.sweep.dir={sweep_dir}",
            "progress=false",
        ]
    )
    script = f"""
set -eu
ip link set lo up
# getaddrinfo's AI_ADDRCONFIG, which slurmd and slurmctld use, finds no address family where
# only loopback addresses exist; a private address on lo itself still leaves nothing reachable.
ip addr add 10.254.0.1/32 dev lo
hostname node
mount --bind {state / "hosts"} /etc/hosts
export SLURM_CONF={conf}
trap 'kill $(cat {state}/slurmd.pid {state}/slurmctld.pid {state}/munged.pid 2>/dev/null) \
    2>/dev/null || true' EXIT
munged --force --key-file={key} --socket={munge_socket} --pid-file={state}/munged.pid \
    --log-file={state}/munged.log --seed-file={state}/munge/seed
slurmctld -c
slurmd
for _ in $(seq 60); do
    sinfo -h -o %T 2>/dev/null | grep -qx idle && break
    sleep 1
done
sinfo -h -o %T | grep -qx idle || {{ echo "the SLURM node never became idle" >&2; exit 1; }}
# Bounded here, not by subprocess.run, so that the trap still stops the daemons.
timeout 240 {sweep}
"""
    done = subprocess.run(
        ["unshare", "--net", "--uts", "--mount", "bash", "-c", script],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    logs = "".join(
        f"\n--- {log.name}\n{log.read_text()[-1500:]}" for log in sorted(state.glob("*.log"))
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:] + logs
    _assert_identical(reference, sweep_dir)
