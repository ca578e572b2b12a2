"""Money formatting for the shop's pages."""

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def rupiah(value: int | Decimal | str) -> str:
    """Format an amount the Indonesian way: ``Rp 85.000``."""
    try:
        amount = int(Decimal(str(value)))
    except (ArithmeticError, ValueError):
        return str(value)
    return "Rp " + f"{amount:,}".replace(",", ".")
