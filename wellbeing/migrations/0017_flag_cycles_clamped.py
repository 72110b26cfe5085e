from django.db import migrations, models

MAX_FLAG_CYCLES = 52  # a year of weekly check-ins; wellbeing.models.MAX_FLAG_CYCLES


def clamp_stored_settings(apps, schema_editor):
    """Settings saved before the limit existed are brought to it, so 0018's constraint holds."""
    FlagSettings = apps.get_model("wellbeing", "FlagSettings")
    for field in ("high_stress_consecutive", "resolve_after_cycles"):
        FlagSettings.objects.filter(**{f"{field}__gt": MAX_FLAG_CYCLES}).update(
            **{field: MAX_FLAG_CYCLES}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("wellbeing", "0016_team_comments"),
    ]

    operations = [
        migrations.RunPython(clamp_stored_settings, migrations.RunPython.noop),
    ]
