from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "Live status"

    def ready(self) -> None:
        from checkout.signals import payment_status_changed
        from realtime import receivers
        from realtime.daphne_close import allow_server_close_codes

        allow_server_close_codes()

        payment_status_changed.connect(
            receivers.broadcast_payment_status, dispatch_uid="realtime.broadcast_payment_status"
        )
