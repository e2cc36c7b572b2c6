from django.apps import AppConfig


class ChatbotConfig(AppConfig):
    """The Slack bot: signed events in, the one intake, and the verdict acted on in Slack
    (removal, notice, strike, correction, appeal), every Web API call audited."""

    name = "chatbot"
    verbose_name = "Slack bot"

    def ready(self):
        # Verdicts of Slack items are acted on in Slack (chatbot.tasks.act_on_item), and a
        # workspace may judge its items by a policy of its own.
        from django.db.models.signals import post_delete, post_save

        from review.policy import register_policy_source
        from uploads.events import item_changed

        from . import receipt, services, tasks
        from .models import Workspace

        item_changed.connect(tasks.on_item_changed, dispatch_uid="chatbot.verdicts", weak=False)
        register_policy_source("slack", services.workspace_policy)
        # Receipt keeps each workspace for 2 s per process; an edit here is seen at once.
        for signal in (post_save, post_delete):
            signal.connect(
                receipt.forget_workspace,
                sender=Workspace,
                weak=False,
                dispatch_uid=f"chatbot.forget_workspace.{signal is post_save}",
            )
