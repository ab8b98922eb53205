"""sources.yaml resource -> Dagster asset spec: keys `[source, table]`, lineage from the API, automation, freshness."""

import datetime as dt
import hashlib
import inspect
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Dict, Optional, Tuple

import dagster as dg
from dagster_dlt import DagsterDltTranslator
from dagster_dlt.translator import DltResourceTranslatorData

from data_foundation.dagster.automation import build_automation_condition
from data_foundation.config.project import ResourceDef, SourceDef
from data_foundation.errors import FoundationError

__all__ = ["FoundationTranslator", "ResourceAssetData", "SpecTranslation", "TranslationError", "upstream_key",
           "asset_key", "code_version", "METADATA_PREFIX"]

METADATA_PREFIX = "data_foundation/"
META_ENTRY = METADATA_PREFIX + "entry"
META_SOURCE_FILE = METADATA_PREFIX + "source_file"
META_WRITE_DISPOSITION = METADATA_PREFIX + "write_disposition"
META_PRIMARY_KEY = METADATA_PREFIX + "primary_key"
META_CURSOR = METADATA_PREFIX + "cursor"
# Dagster's documented table metadata keys, as dagster-dlt's own translator sets them
DAGSTER_TABLE_NAME = "dagster/table_name"
DAGSTER_STORAGE_KIND = "dagster/storage_kind"


def asset_key(resource: ResourceDef) -> dg.AssetKey:
    return dg.AssetKey([resource.source, resource.table])


def upstream_key(resource: ResourceDef) -> dg.AssetKey:
    """The external asset standing for the API endpoint (or entry) a raw table is read from."""
    return dg.AssetKey([resource.source, "src", resource.table])


@dataclass(frozen=True)
class ResourceAssetData:
    """What a translation sees of an asset: the resource of sources.yaml it stands for, and whether it is the API
    endpoint (the entry) the resource reads rather than the table it loads. Template variables of a component's
    `translation`: `{{ resource.source }}`, `{{ resource.table }}`, `{{ endpoint }}`."""

    resource: ResourceDef
    endpoint: bool = False


# Dagster's `TranslationFn`: the spec built from sources.yaml -> the spec to define (a component's `translation`)
SpecTranslation = Callable[[dg.AssetSpec, ResourceAssetData], dg.AssetSpec]


class TranslationError(FoundationError):
    """A translation that gives specs the definitions cannot take (two assets one key, partitions)."""


class FoundationTranslator(DagsterDltTranslator):
    """Maps each dlt resource of a source folder to its asset spec, reading what sources.yaml declared, then
    applying `translation` (a component's overrides) to every spec it makes. Dependencies name the translated keys,
    so a key prefix moves the whole graph: table, API endpoint, data_from parent. Each spec is made and translated
    once per resource (a translation renders templates: ~3 ms each, and the checks, lineage and dbt ask for keys)."""

    def __init__(self, source: SourceDef, destination_type: Optional[str] = None,
                 translation: Optional[SpecTranslation] = None):
        super().__init__()
        self.source = source
        self.destination_type = destination_type
        self.translation = translation
        self._by_table = {r.table: r for r in source.resources}
        self._specs: Dict[Tuple[str, bool, Optional[str]], dg.AssetSpec] = {}

    def get_asset_spec(self, data: DltResourceTranslatorData) -> dg.AssetSpec:
        """dagster-dlt's hook, called on every run to map the run's dlt resources to asset keys. Not built from
        `super().get_asset_spec(data)`: the run's specs must be the definitions' ones, which have no dlt resource."""
        destination = self.destination_type or (data.destination.destination_name if data.destination else None)
        return self.resource_spec(self._by_table[data.resource.name], destination)

    def resource_spec(self, resource: ResourceDef, destination: Optional[str] = None) -> dg.AssetSpec:
        """The spec from the validated sources.yaml alone, so definitions build no dlt source or pipeline
        (~60 ms per source, most of `dg dev`'s load time); each run builds its own."""
        destination = destination or self.destination_type
        cached = (resource.table, False, destination)
        if cached not in self._specs:
            self._specs[cached] = self._translated(self._table_spec(resource, destination), ResourceAssetData(resource))
        return self._specs[cached]

    def _table_spec(self, resource: ResourceDef, destination: Optional[str]) -> dg.AssetSpec:
        return dg.AssetSpec(
            key=asset_key(resource),
            deps=[self._upstream(resource)],
            group_name=resource.dagster.group_name or resource.source,
            description=resource.description,
            kinds={"dlt", *resource.spec.kinds} | ({destination} if destination else set()),
            owners=list(dict.fromkeys([*self.source.spec.owners, *resource.spec.owners])),
            tags={**self.source.spec.tags, **resource.spec.tags},
            automation_condition=build_automation_condition(resource.dagster),
            code_version=code_version(resource),
            freshness_policy=_freshness_policy(resource),
            metadata={**_table_metadata(resource, destination), **_metadata(resource)},
        )

    def upstream_spec(self, resource: ResourceDef) -> dg.AssetSpec:
        """The external asset for the API endpoint (entry) a raw table is read from: the graph reads API -> table."""
        cached = (resource.table, True, None)
        if cached in self._specs:
            return self._specs[cached]
        spec = dg.AssetSpec(
            key=upstream_key(resource),
            group_name=resource.dagster.group_name or self.source.name,
            description=f"`{resource.spec.entry}` in {resource.target.module_file.name} of source `{self.source.name}`",
            kinds={"api"} if "api" in resource.spec.kinds else {"python"},
            metadata={META_ENTRY: resource.spec.entry},
        )
        self._specs[cached] = self._translated(spec, ResourceAssetData(resource, endpoint=True))
        return self._specs[cached]

    def key(self, resource: ResourceDef) -> dg.AssetKey:
        """The asset key of the resource's table, translated."""
        return self.resource_spec(resource).key if self.translation else asset_key(resource)

    def _upstream(self, resource: ResourceDef) -> dg.AssetKey:
        parent = resource.spec.data_from
        if parent:
            return self.key(self._by_table[parent.split(".", 1)[1]])
        return self.upstream_spec(resource).key if self.translation else upstream_key(resource)

    def _translated(self, spec: dg.AssetSpec, data: ResourceAssetData) -> dg.AssetSpec:
        if not self.translation:
            return spec
        translated = self.translation(spec, data)
        if translated.partitions_def is not None:  # the multi-asset's partitions are the source's
            raise TranslationError(f"the translation sets `partitions_def` on {translated.key.to_user_string()}: a "
                                   f"source's partitions are `meta.dagster.partition` in its sources.yaml "
                                   f"({data.resource.file})")
        return translated


def code_version(resource: ResourceDef) -> str:
    """What the asset's data depends on in the source folder: the resource's validated sources.yaml entry and the
    module of its entry function. `missing_or_changed` runs the asset again when it changes."""
    digest = hashlib.sha256(resource.spec.model_dump_json().encode())
    path = inspect.getsourcefile(resource.function) or ""
    try:
        digest.update(_file_digest(path, os.stat(path).st_mtime_ns))
    except OSError:
        pass
    return digest.hexdigest()[:16]


@lru_cache(maxsize=256)
def _file_digest(path: str, mtime_ns: int) -> bytes:
    """Once per file and version: a source's resources share their data.py."""
    with open(path, "rb") as module:
        return hashlib.sha256(module.read()).digest()


def _freshness_policy(resource: ResourceDef) -> Optional[dg.FreshnessPolicy]:
    seconds = resource.dagster.freshness_lower_bound_delta_seconds
    # time_window, not cron: FreshnessPolicy.cron rejects a window longer than the cron interval (30 h vs @daily)
    return dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(seconds=seconds)) if seconds else None


def _table_metadata(resource: ResourceDef, destination: Optional[str]) -> Dict[str, str]:
    metadata = {DAGSTER_TABLE_NAME: resource.table}
    if destination:
        metadata[DAGSTER_STORAGE_KIND] = destination
    return metadata


def _metadata(resource: ResourceDef) -> Dict[str, Any]:
    spec = resource.spec
    keys = spec.primary_key_columns
    metadata: Dict[str, Any] = {
        META_ENTRY: spec.entry,
        META_SOURCE_FILE: dg.MetadataValue.path(str(resource.file)),
        META_WRITE_DISPOSITION: spec.disposition,
        META_PRIMARY_KEY: ", ".join(keys),
    }
    if spec.incremental:
        metadata[META_CURSOR] = spec.incremental.cursor_path
    return metadata
