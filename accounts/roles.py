"""Roles are groups with permissions; this is the one place that defines them."""

UPLOADER = "uploader"
MODERATOR = "moderator"
POLICY_ADMIN = "policy admin"

# group -> [(app_label, codename)]
ROLE_PERMISSIONS = {
    UPLOADER: [],
    MODERATOR: [("review", "moderate")],
    POLICY_ADMIN: [
        ("review", "moderate"),
        ("review", "override"),
        ("review", "add_policy"),  # another policy, e.g. for an API client
        ("review", "change_policy"),
        ("review", "view_policy"),
        *[
            ("review", f"{action}_{model}")
            for model in ("voter", "category", "classifierlabel")
            for action in ("view", "add", "change", "delete")
        ],
        ("review", "view_analysis"),
        *[("review", f"{action}_term") for action in ("view", "add", "change")],  # text
        ("accounts", "view_author"),
        ("accounts", "change_author"),
        ("accounts", "lift_ban"),
        *[
            ("hashing", f"{action}_{model}")
            for model in ("bank", "bankcontent", "bankentry")
            for action in ("view", "add", "change")
        ],
        ("hashing", "view_bankchange"),
        ("review", "view_queueentry"),
        ("review", "change_queueentry"),
        ("review", "view_decision"),
        ("review", "view_policychange"),
        ("uploads", "view_mediaitem"),
        ("uploads", "view_original"),
    ],
}


def sync_roles():
    """Create the groups and attach their permissions; idempotent, run after every migrate."""
    from django.contrib.auth.models import Group, Permission

    for name, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        wanted = [
            p
            for app_label, codename in perms
            for p in Permission.objects.filter(content_type__app_label=app_label, codename=codename)
        ]
        group.permissions.add(*wanted)
