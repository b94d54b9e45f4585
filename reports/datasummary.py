"""What a run trained on: dataset name, image count and source mix, from the dataset's manifest.

A prepared dataset (``albumgan data prepare``) keeps ``manifest.jsonl`` beside ``images/``: one
line per raw file with its status and, for crawled or Gaon covers, its ``origin`` (engine and
keyword, or chart year, artist, album and cover source). The synthetic set has no manifest.
Every string here may come from the web: templates escape it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from albumgan.data_tools.registry import DatasetError, list_images, resolve
from albumgan.gan_core.fileio import default_cache_dir, read_jsonl

MAX_TITLES = 12


def summarize_dataset(config: dict[str, Any]) -> dict[str, Any]:
    """Name, folder, image count, statuses, sources, keywords and a few titles; never raises."""
    name = str(config.get("dataset", ""))
    summary: dict[str, Any] = {
        "name": name,
        "folder": None,
        "count": None,
        "statuses": {},
        "sources": {},
        "keywords": {},
        "titles": [],
        "note": "",
    }
    cache = Path(config.get("cache_dir") or default_cache_dir())
    try:
        folder = resolve(name, config.get("data_dir") or None, cache)
    except DatasetError as exc:
        summary["note"] = f"dataset not found on this machine: {exc}"
        return summary
    summary["folder"] = str(folder)
    summary["count"] = len(list_images(folder))
    if name == "synthetic":
        summary["sources"] = {"synthetic (generated offline by data_tools.synthetic)": 1}
        return summary
    records = read_jsonl(folder.parent / "manifest.jsonl")
    if not records:
        summary["note"] = "no manifest.jsonl beside the images: source mix unknown"
        return summary
    summary["statuses"] = dict(Counter(r.get("status", "?") for r in records).most_common())
    kept = [r for r in records if r.get("status") == "kept"]
    sources: Counter[str] = Counter()
    keywords: Counter[str] = Counter()
    for record in kept:
        origin = record.get("origin") or {}
        if "engine" in origin:
            sources[f"crawl: {origin['engine']}"] += 1
            keywords[str(origin.get("keyword", ""))] += 1
        elif "source" in origin:
            sources[f"gaon: {origin['source']}"] += 1
            if len(summary["titles"]) < MAX_TITLES:
                summary["titles"].append(
                    f"{origin.get('year', '?')} #{origin.get('rank', '?')} "
                    f"{origin.get('artist', '?')} - {origin.get('album', '?')}"
                )
        else:
            sources["unknown origin"] += 1
    summary["sources"] = dict(sources.most_common())
    summary["keywords"] = dict(keywords.most_common())
    return summary
