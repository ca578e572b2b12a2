from django.contrib import admin
from django.urls import include, path

from project.health import healthz
from project.metrics import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="prometheus-django-metrics"),
    path("", include("checkout.urls")),
]
