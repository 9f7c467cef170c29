from django.apps import AppConfig


class IndicatorsConfig(AppConfig):
    name = "indicators"

    def ready(self) -> None:
        from .setup_step import register

        register()
