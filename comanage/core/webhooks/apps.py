from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "comanage.core.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # Every named business event (``comanage.core.audit.event_record``) is offered to the
        # organization's endpoints: one subscription, no service needs to know about webhooks.
        from django.db.models.signals import post_save

        from comanage.core.models import BusinessEvent

        from .services import business_event_dispatch

        def _dispatch(sender, instance, created, raw=False, **kwargs):
            if created and not raw:
                business_event_dispatch(event=instance)

        post_save.connect(
            _dispatch,
            sender=BusinessEvent,
            weak=False,
            dispatch_uid="webhooks.business_event_dispatch",
        )
