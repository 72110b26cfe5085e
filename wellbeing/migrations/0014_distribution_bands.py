# The aggregates' distribution moves from one JSON list to a column per band (see the model);
# the stored counts are carried over in one UPDATE each way.

from django.db import migrations, models

BANDS = ("band_0_20", "band_20_40", "band_40_60", "band_60_80", "band_80_100")


def _element(vendor: str, i: int) -> str:
    if vendor == "postgresql":
        return f"(distribution->>{i})::integer"
    return f"json_extract(distribution, '$[{i}]')"


def bands_from_lists(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    assignments = ", ".join(f"{band} = {_element(vendor, i)}" for i, band in enumerate(BANDS))
    schema_editor.execute(
        f"UPDATE wellbeing_teamaggregate SET {assignments} WHERE distribution IS NOT NULL"
    )


def lists_from_bands(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    build = "jsonb_build_array" if vendor == "postgresql" else "json_array"
    schema_editor.execute(
        f"UPDATE wellbeing_teamaggregate SET distribution = {build}({', '.join(BANDS)})"
        f" WHERE {BANDS[0]} IS NOT NULL"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("wellbeing", "0013_team_rows_without_database_constraint"),
    ]

    operations = [
        *[
            migrations.AddField(
                model_name="teamaggregate",
                name=band,
                field=models.PositiveIntegerField(blank=True, null=True),
            )
            for band in BANDS
        ],
        migrations.RunPython(bands_from_lists, lists_from_bands),
        migrations.RemoveConstraint(
            model_name="teamaggregate",
            name="teamaggregate_suppressed_has_no_numbers",
        ),
        migrations.RemoveField(
            model_name="teamaggregate",
            name="distribution",
        ),
        migrations.AddConstraint(
            model_name="teamaggregate",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("band_0_20__isnull", True),
                        ("band_20_40__isnull", True),
                        ("band_40_60__isnull", True),
                        ("band_60_80__isnull", True),
                        ("band_80_100__isnull", True),
                        ("ci_high__isnull", True),
                        ("ci_low__isnull", True),
                        ("delta_published", False),
                        ("index__isnull", True),
                        ("n__isnull", True),
                        ("published", False),
                        ("sd__isnull", True),
                    ),
                    models.Q(("index__isnull", False), ("n__isnull", False), ("published", True)),
                    _connector="OR",
                ),
                name="teamaggregate_suppressed_has_no_numbers",
            ),
        ),
    ]
