from django.db import migrations, models

LANGUAGES = ("en", "de")  # settings.LANGUAGES when this was written


def _supported(code):
    base = (code or "").replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else None


def normalise_languages(apps, schema_editor):
    """Values stored before the choices existed ("de-DE", "en_GB", "fr"): the language Pulse
    has for them; an organisation without one reads English, a person the organisation's."""
    Organisation = apps.get_model("wellbeing", "Organisation")
    User = apps.get_model("wellbeing", "User")
    for organisation in Organisation.objects.exclude(locale__in=LANGUAGES):
        organisation.locale = _supported(organisation.locale) or "en"
        organisation.save(update_fields=["locale"])
    for user in User.objects.exclude(language__in=("", *LANGUAGES)):
        user.language = _supported(user.language) or ""
        user.save(update_fields=["language"])


class Migration(migrations.Migration):
    dependencies = [
        ("wellbeing", "0019_organisation_comment_threshold_default"),
    ]

    operations = [
        migrations.RunPython(normalise_languages, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="organisation",
            name="locale",
            field=models.CharField(
                choices=[("en", "English"), ("de", "Deutsch")],
                default="en",
                help_text="Pages and messages for people who have not chosen a language of their own.",
                max_length=10,
                verbose_name="language",
            ),
        ),
        migrations.AlterField(
            model_name="user",
            name="language",
            field=models.CharField(
                blank=True,
                choices=[("en", "English"), ("de", "Deutsch")],
                help_text="Empty means the organisation's language.",
                max_length=10,
            ),
        ),
    ]
