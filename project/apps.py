from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """The project package as an app, so that its system checks are registered."""

    name = "project"
    verbose_name = "Paywatch"

    def ready(self) -> None:
        from project import checks  # noqa: F401 (registers the checks)
        from project.daphne_body import pass_bodies_through
        from project.daphne_log import silence_twisted_access_log

        silence_twisted_access_log()
        pass_bodies_through()
