"""Create the demo products and, when asked, a superuser (idempotent)."""

import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from checkout.models import Product

PRODUCTS = [
    ("kopi-gayo", "Kopi Gayo 250 g", 85_000, "Single-origin arabica from Aceh"),
    ("batik-tulis", "Batik tulis scarf", 450_000, "Hand-drawn batik from Solo"),
    ("sambal-set", "Sambal trio", 60_000, "Matah, bawang and ijo"),
    ("rattan-bag", "Rattan bag", 275_000, "Woven in Lombok"),
]


class Command(BaseCommand):
    help = "Create the demo products (idempotent); with DEMO_ADMIN_PASSWORD set, an 'admin' superuser too."

    def handle(self, *args: Any, **options: Any) -> None:
        for sku, name, price, description in PRODUCTS:
            Product.objects.update_or_create(sku=sku, defaults={"name": name, "price": price,
                                                                "description": description})
        self.stdout.write(f"{len(PRODUCTS)} demo products ready.")
        password = os.environ.get("DEMO_ADMIN_PASSWORD")
        if password:
            user, _ = get_user_model().objects.get_or_create(
                username="admin", defaults={"is_staff": True, "is_superuser": True}
            )
            user.set_password(password)
            user.save()
            self.stdout.write("Superuser 'admin' ready.")
