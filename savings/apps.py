from django.apps import AppConfig


class SavingsConfig(AppConfig):
    name = "savings"

    def ready(self) -> None:
        from .signals import connect_receivers

        connect_receivers()

        from .setup_step import register

        register()
