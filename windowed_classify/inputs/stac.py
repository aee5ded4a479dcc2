"""``rasters.stac``: the assets of STAC items as input rasters.

``rasters.stac`` names a STAC ItemCollection or a list of STAC Item files (local paths or
URLs), read with pystac (the ``stac`` extra). Every asset whose media type is one of
``rasters.media_types`` (Cloud-Optimised GeoTIFF by default) is an input file whose layer is named
``<item id>_<asset key>``, or the asset key alone when there is one item; the bands of a
multi-band asset are named as those of any multi-band file. Items come in the order given (an
ItemCollection's in its order), assets in each item's order.

An asset's href relative to its item resolves against the item's self link, else against the
file the item was read from (STAC's rule). ``https://`` hrefs are read by /vsicurl/,
``s3://`` by /vsis3/ and ``gs://`` by /vsigs/; a local href must exist.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ..config import RastersConfig
from ..config_values import is_remote, media_type
from ..errors import ConfigError, InputError
from .urls import gdal_path

STAC_HINT = 'reading STAC items needs pystac: pip install "windowed_classify[stac]"'


def _pystac() -> Any:
    try:
        import pystac
    except ImportError:
        raise ConfigError(f"config key 'rasters.stac': {STAC_HINT}") from None
    return pystac


def stac_assets(
    rasters: RastersConfig, exclude: Sequence[Path] = ()
) -> list[tuple[str, Path | str, str]]:
    """The input files of ``rasters.stac``, in order, as (layer stem, path, where it comes
    from, for messages); an InputError when there is none."""
    assert rasters.stac is not None
    pystac = _pystac()
    items: list[tuple[Any, str]] = []  # (item, the href its relative hrefs resolve against)
    for href in rasters.stac:
        items += _read_items(pystac, href)
    wanted = set(rasters.media_types)
    skip = {p.resolve() for p in exclude}
    sources: list[tuple[str, Path | str, str]] = []
    found_types: set[str] = set()
    for item, base in items:
        for key, asset in item.assets.items():
            kind = media_type(asset.media_type) if asset.media_type else ""
            found_types.add(asset.media_type or "(none)")
            if kind not in wanted:
                continue
            origin = f"rasters.stac item '{item.id}' asset '{key}'"
            href = pystac.utils.make_absolute_href(asset.href, base)
            path = _raster_path(href)
            if isinstance(path, Path):
                if not path.is_file():
                    raise InputError(f"{origin}: file not found: {path}")
                if path.resolve() in skip:
                    raise InputError(f"{origin}: {path} is this run's output, not a layer")
            stem = key if len(items) == 1 else f"{item.id}_{key}"
            sources.append((stem, path, origin))
    if not sources:
        raise InputError(
            f"rasters.stac: no asset of media type {', '.join(rasters.media_types)} in "
            f"{len(items)} item(s) (their assets' types: {', '.join(sorted(found_types)) or '-'}); "
            "set rasters.media_types to choose others"
        )
    return sources


def _read_items(pystac: Any, href: Path | str) -> list[tuple[Any, str]]:
    """The items of one ItemCollection or Item file, each with the href its relative links
    resolve against."""
    text = str(href)
    try:
        data = pystac.StacIO.default().read_json(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"rasters.stac: {text} is not JSON: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - pystac raises what urllib or open raise
        raise InputError(f"rasters.stac: cannot read {text}: {exc}") from None
    kind = data.get("type") if isinstance(data, dict) else None
    try:
        if kind == "FeatureCollection":
            collection = pystac.ItemCollection.from_dict(data, preserve_dict=False)
            return [(item, item.get_self_href() or text) for item in collection.items]
        if kind == "Feature":
            item = pystac.Item.from_dict(data, href=text, preserve_dict=False)
            return [(item, item.get_self_href() or text)]
    except Exception as exc:  # noqa: BLE001 - pystac's errors for a malformed item vary
        raise InputError(f"rasters.stac: {text} is not a valid STAC item: {exc}") from None
    raise InputError(
        f"rasters.stac: {text} is a {kind or 'JSON document'}, not a STAC ItemCollection or "
        "Item (for a Collection or Catalog, list its items' files)"
    )


def _raster_path(href: str) -> Path | str:
    """A local path for a local href, the GDAL path for a remote one."""
    if href.lower().startswith("file://"):
        return Path(unquote(urlparse(href).path))
    if re.match(r"[a-z][a-z0-9+.-]+://", href, re.IGNORECASE) or is_remote(href):
        return gdal_path(href)
    return Path(href)
