from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ReconcileConfig(AppConfig):
    name = "reconcile"
    verbose_name = "Reconcile"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from reconcile import schedules

        # RECONCILE_INTERVAL_MINUTES takes effect at every migrate and qcluster start (reconcile/schedules.py).
        post_migrate.connect(schedules.sync_after_migrate, sender=self,
                             dispatch_uid="reconcile.schedules.sync_after_migrate")
        post_spawn.connect(schedules.sync_at_worker_start, dispatch_uid="reconcile.schedules.sync_at_worker_start")
