"""The two staff roles, as Django groups: operators curate and review, admins also manage models and schedules.

Created after every `migrate` and by `python manage.py create_roles`. A staff user gets a role by being put
in its group (admin: Users -> Groups); superusers have every permission anyway.
"""

from typing import Any

from django.apps import apps

ALL = ("add", "change", "delete", "view")
OPERATOR_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "knowledge.qapair": ALL,
    "knowledge.alternatequestion": ALL,
    "knowledge.followup": ALL,
    "knowledge.pairanswer": ALL,
    "knowledge.outofscopeexample": ALL,
    "conversations.conversation": ("view", "delete"),  # deleting one customer's conversation on request
    "conversations.message": ("view",),
    "review.reviewitem": ALL,
    "registry.modelversion": ("view",),
    "registry.trainingrun": ("view",),
    "shop_sites.site": ("view",),
    # People in the loop; an action with an underscore is a whole codename (the console's own permission).
    "console.handoff": ("view", "use_console"),
    "console.ticket": ("view", "change"),
    "console.note": ("view",),
    "console.suggestedpair": ALL,
    "console.schedule": ("view",),
    "console.openingperiod": ("view",),
}
ADMIN_PERMISSIONS: dict[str, tuple[str, ...]] = {
    **OPERATOR_PERMISSIONS,
    "registry.modelversion": ALL,
    "registry.trainingrun": ALL,
    "shop_sites.site": ALL,
    "django_celery_beat.periodictask": ALL,
    "django_celery_beat.crontabschedule": ALL,
    "django_celery_beat.intervalschedule": ALL,
    "django_celery_beat.clockedschedule": ALL,
    "django_celery_beat.solarschedule": ALL,
    "console.schedule": ALL,
    "console.openingperiod": ALL,
}
ROLES = {"Operators": OPERATOR_PERMISSIONS, "Admins": ADMIN_PERMISSIONS}


def roles_ensure(**kwargs: Any) -> dict[str, int]:
    """Create or update the groups with exactly their permissions; returns the number of each."""
    from django.contrib.auth.management import create_permissions
    from django.contrib.auth.models import Group, Permission

    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    if "app_config" in kwargs and kwargs["app_config"] is not with_models[-1]:
        return {}  # post_migrate comes once per app: act once, after the last
    for app_config in apps.get_app_configs():  # permissions of apps migrated after this hook ran
        create_permissions(app_config, verbosity=0)
    counts = {}
    for name, spec in ROLES.items():
        wanted: list[Permission] = []
        for model, actions in spec.items():
            app_label, model_name = model.split(".")
            codenames = [action if "_" in action else f"{action}_{model_name}" for action in actions]
            wanted += Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(wanted)
        counts[name] = len(wanted)
    return counts
