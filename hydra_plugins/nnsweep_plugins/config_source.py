"""A config source that shows Hydra one group from one folder, and nothing else.

``nnsweep-group://experiments=/some/project/experiments`` makes ``experiments=NAME`` load
``/some/project/experiments/NAME.yaml``. A plain ``file://`` entry would have to point at
the folder's parent, and would make every sub-folder of it (results/, .venv/, a home
directory) a config group that Hydra walks and lists. Only nnsweep's search path uses
this scheme (see search_path.py); registering the scheme changes nothing for other apps.
"""

from pathlib import Path
from typing import Optional

from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from omegaconf import OmegaConf

SUFFIX = ".yaml"


class NNSweepGroupSource(ConfigSource):
    def __init__(self, provider: str, path: str) -> None:
        super().__init__(provider=provider, path=path)
        self.group, _, folder = self.path.partition("=")
        self.folder = Path(folder)

    @staticmethod
    def scheme() -> str:
        return "nnsweep-group"

    def _file(self, config_path: str) -> Optional[Path]:  # noqa: UP045
        group, _, name = self._normalize_file_name(config_path).rpartition("/")
        if group != self.group or "/" in name:
            return None
        return self.folder / name

    def load_config(self, config_path: str) -> ConfigResult:
        file = self._file(config_path)
        if file is None or not file.is_file():
            raise ConfigLoadError(f"Config not found : {config_path}")
        text = file.read_text(encoding="utf-8")
        return ConfigResult(
            config=OmegaConf.create(OmegaConf.load(file)),
            path=f"{self.scheme()}://{self.path}",
            provider=self.provider,
            header=ConfigSource._get_header_dict(text[:512]),
        )

    def available(self) -> bool:
        return self.folder.is_dir()

    def is_group(self, config_path: str) -> bool:
        return self.available() and config_path.strip("/") in ("", self.group)

    def is_config(self, config_path: str) -> bool:
        file = self._file(config_path)
        return file is not None and file.is_file()

    def list(self, config_path: str, results_filter: Optional[ObjectType]) -> list[str]:  # noqa: UP045
        if not self.available():
            return []
        where = config_path.strip("/")
        if where == "" and results_filter in (None, ObjectType.GROUP):
            return [self.group]
        if where == self.group and results_filter in (None, ObjectType.CONFIG):
            return sorted(file.stem for file in self.folder.glob(f"*{SUFFIX}") if file.is_file())
        return []
