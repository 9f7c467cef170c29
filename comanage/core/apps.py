from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "comanage.core"
    label = "core"
    verbose_name = "Comanage core"

    def ready(self) -> None:
        from . import signals  # noqa: F401
        from .versioning import connect_receivers

        connect_receivers()
