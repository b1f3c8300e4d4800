from django.apps import AppConfig


class PaperclipConfig(AppConfig):
    name = "paperclip"
    verbose_name = "Paperclip"

    def ready(self) -> None:
        from paperclip import checks  # noqa: F401 - registers the production-settings check
        from paperclip.api import schema  # noqa: F401 - registers the OpenAPI auth schemes
