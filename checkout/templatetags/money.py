"""The ``rupiah`` filter: amounts on the customer's pages, written as ``checkout.display.rupiah`` writes them."""

from django import template

from checkout.display import rupiah

register = template.Library()
register.filter("rupiah", rupiah)
