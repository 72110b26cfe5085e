"""The built-in question library, shipped as versioned JSON (``v<N>.json``).

``library_install`` loads one version into the database.  It takes the model classes as
arguments so the data migration can pass its historical models; it is idempotent (an item
already present with the same key and version is left untouched — library items are never
edited in place, a change ships as a new version in a new file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LIBRARY_DIR = Path(__file__).resolve().parent


def library_data(version: int) -> dict[str, Any]:
    with (LIBRARY_DIR / f"v{version}.json").open(encoding="utf-8") as fh:
        return json.load(fh)


def library_install(*, version: int, question_model, survey_model, item_model) -> dict[str, int]:
    data = library_data(version)
    created_questions = created_surveys = 0
    by_key: dict[str, Any] = {}
    for item in data["questions"]:
        existing = question_model.objects.filter(organisation__isnull=True, key=item["key"])
        current = existing.order_by("-version").first()
        if current is not None and current.library_version == data["library_version"]:
            by_key[item["key"]] = current
            continue
        scale = item.get("scale") or {}
        question = question_model.objects.create(
            organisation=None,
            key=item["key"],
            version=(current.version + 1) if current else 1,
            replaces=current,
            kind=item.get("kind", "scale"),
            audience=item.get("audience", "all"),
            text=item["text"],
            dimension=item.get("dimension", ""),
            scale_min=scale.get("min"),
            scale_max=scale.get("max"),
            scale_labels=scale.get("labels", []),
            reverse=item.get("reverse", False),
            higher_is_worse=item.get("higher_is_worse", True),
            required=item.get("required", False),
            source=item.get("source", ""),
            licence=item.get("licence", ""),
            translations=item.get("translations", {}),
            library_version=data["library_version"],
            is_current=True,
        )
        if current is not None:
            existing.exclude(pk=question.pk).update(is_current=False)
        by_key[item["key"]] = question
        created_questions += 1
    for spec in data.get("surveys", []):
        if survey_model.objects.filter(
            organisation__isnull=True, key=spec["key"], version=data["library_version"]
        ).exists():
            continue
        previous = (
            survey_model.objects.filter(organisation__isnull=True, key=spec["key"])
            .order_by("-version")
            .first()
        )
        survey = survey_model.objects.create(
            organisation=None,
            key=spec["key"],
            version=data["library_version"],
            replaces=previous,
            name=spec["name"],
            description=spec.get("description", ""),
            translations=spec.get("translations", {}),
            items_per_person=spec.get("items_per_person", 8),
            is_published=True,
            is_current=True,
        )
        if previous is not None:
            survey_model.objects.filter(organisation__isnull=True, key=spec["key"]).exclude(
                pk=survey.pk
            ).update(is_current=False)
        item_model.objects.bulk_create(
            item_model(survey=survey, question=by_key[key], position=pos)
            for pos, key in enumerate(spec["questions"])
        )
        created_surveys += 1
    return {"questions": created_questions, "surveys": created_surveys}
