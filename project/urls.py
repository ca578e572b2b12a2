from django.contrib import admin
from django.urls import include, path

from project.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("", include("django_prometheus.urls")),
    path("", include("checkout.urls")),
]
