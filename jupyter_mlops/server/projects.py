"""The projects one Jupyter server holds (`places`): where each notebook's runs go, the run
folders and stores the server knows, and the MLflow UI that shows each store.

By default every notebook's runs go to its own project's store and run folders, as from the
command line, so a server started above several repositories (a hub's home folder) serves
each with its own. The server knows the server root's project from the start, and every
project it has since started, listed or configured a run for: `GET runs` without a notebook
lists their run folders, a run id is looked for in each, and only their stores are ones it
links into or tells about an abandoned run (a run.json may name any store: it is data).
"""

from __future__ import annotations

from pathlib import Path

from ..places import Places, PlacesRule
from ..tracking import MlflowLinks
from .mlflow_ui import ProxiedUis


class Projects:
    def __init__(
        self, root: Path, rule: PlacesRule, ui_url: str | None, proxied: ProxiedUis | None
    ) -> None:
        """`ui_url`: an MLflow UI configured for every store; else `proxied`, one per store
        behind the server (None: no UI to link to)."""
        self.root = root
        self.rule = rule
        self._ui_url = ui_url
        self._proxied = proxied
        self._runs_dirs: dict[Path, Path] = {}  # real path -> as the rule named it
        self._stores: set[str] = set()
        self._links: dict[str, MlflowLinks] = {}
        self.home = self.of(root)  # the server root's project

    def of(self, notebook: Path, fresh: bool = False) -> Places:
        """Where `notebook`'s runs go (`fresh`: asked afresh, for a run about to start)."""
        places = self.rule.of(notebook, fresh)
        self._runs_dirs.setdefault(places.runs_dir.resolve(), places.runs_dir)
        self._stores.add(places.store)
        return places

    def runs_dirs(self) -> list[Path]:
        """Every run folders' root the server knows, the server root project's first."""
        return list(self._runs_dirs.values())

    def stores(self) -> frozenset[str]:
        return frozenset(self._stores)

    def shows(self, store: str | None) -> bool:
        """Whether `store` is one of the known projects' (or the configured one)."""
        return store is not None and store in self._stores

    def links(self, store: str | None) -> MlflowLinks:
        """Links into the UI showing `store`; none for a store the server doesn't show."""
        if not self.shows(store):
            return MlflowLinks(None)
        assert store is not None
        if store not in self._links:
            url = self._ui_url or (self._proxied.url(store) if self._proxied else None)
            self._links[store] = MlflowLinks(url)
        return self._links[store]
