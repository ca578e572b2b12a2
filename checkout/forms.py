"""Checkout form of the demo shop."""

from typing import Any

from django import forms

from checkout.models import Product


class CheckoutForm(forms.Form):
    product = forms.ModelChoiceField(queryset=Product.objects.all(), to_field_name="sku")
    quantity = forms.IntegerField(min_value=1, max_value=10, initial=1)
    name = forms.CharField(max_length=120, initial="Budi Santoso")
    email = forms.EmailField(initial="budi@example.com")

    def items(self) -> list[dict[str, Any]]:
        """Return the order lines, priced from the catalogue (never from the form)."""
        product: Product = self.cleaned_data["product"]
        return [{"sku": product.sku, "name": product.name, "price": product.price,
                 "quantity": self.cleaned_data["quantity"]}]
