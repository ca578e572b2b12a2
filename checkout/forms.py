"""Checkout form of the demo shop: one product, a quantity, and who is buying."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from checkout.models import Product


class CheckoutForm(forms.Form):
    product = forms.ModelChoiceField(queryset=Product.objects.all(), to_field_name="sku", label=_("Product"))
    quantity = forms.IntegerField(min_value=1, max_value=10, initial=1, label=_("Quantity"))
    name = forms.CharField(max_length=120, label=_("Name"),
                           widget=forms.TextInput(attrs={"autocomplete": "name"}))
    email = forms.EmailField(label=_("Email"), widget=forms.EmailInput(
        attrs={"autocomplete": "email", "aria-describedby": "email-hint"}))

    def items(self) -> list[dict[str, Any]]:
        """Return the order lines, priced from the catalogue (never from the form)."""
        product: Product = self.cleaned_data["product"]
        return [{"sku": product.sku, "name": product.name, "price": product.price,
                 "quantity": self.cleaned_data["quantity"]}]
