"""What the apps below ask of the bot through their hooks (chatbot.apps)."""

from .models import Workspace


def workspace_policy(item):
    """review.policy's resolver for source "slack": the item's workspace's policy, or None
    (the site's)."""
    team = (item.source_ref or {}).get("team") if isinstance(item.source_ref, dict) else None
    if not team:
        return None
    workspace = Workspace.objects.filter(team_id=team).select_related("policy").first()
    return workspace.policy if workspace else None
