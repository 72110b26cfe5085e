"""Load version 1 of the built-in question library (checkins/library/v1.json)."""

from django.db import migrations


def load_library(apps, schema_editor):
    from checkins.library import library_install

    library_install(
        version=1,
        question_model=apps.get_model("checkins", "Question"),
        survey_model=apps.get_model("checkins", "Survey"),
        item_model=apps.get_model("checkins", "SurveyItem"),
    )


def unload_library(apps, schema_editor):
    Survey = apps.get_model("checkins", "Survey")
    Question = apps.get_model("checkins", "Question")
    Survey.objects.filter(organisation__isnull=True, version=1, cycles__isnull=True).delete()
    Question.objects.filter(
        organisation__isnull=True, library_version=1, survey_items__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("checkins", "0001_initial")]

    operations = [migrations.RunPython(load_library, unload_library)]
