# A separate migration from 0017's update: PostgreSQL refuses to alter a table with the update's
# deferred checks still pending in the same transaction.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("wellbeing", "0017_flag_cycles_clamped"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="flagsettings",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("high_stress_consecutive__lte", 52), ("resolve_after_cycles__lte", 52)
                ),
                name="flagsettings_cycles_at_most_a_year",
            ),
        ),
    ]
