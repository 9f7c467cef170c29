from django.apps import AppConfig


class WorkspacesConfig(AppConfig):
    """The cross-app pages: executive dashboard, administrator workspace, physician home."""

    name = "comanage.workspaces"
    label = "workspaces"
    verbose_name = "Workspaces"
