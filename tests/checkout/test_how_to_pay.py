"""checkout.how_to_pay: one block for every method the page can name, its facts taken from the details."""

from checkout import display, how_to_pay
from checkout.models import Payment


def test_every_method_the_details_can_name_has_exactly_one_block() -> None:
    names = [method.name for method in how_to_pay.METHODS]
    assert sorted(names) == sorted(("", "other", *display.METHODS))


def test_facts_are_fields_of_the_details_and_take_their_values(db, make_order) -> None:
    order = make_order()
    Payment.objects.filter(pk=order.payment.pk).update(payment_type="echannel", biller_code="70012",
                                                       bill_key="990011223344")
    details = display.payment_details(Payment.objects.get(pk=order.payment.pk))
    methods = {method.name: method for method in how_to_pay.methods_with_values(details)}

    assert all(fact.field in details for method in methods.values() for fact in method.facts)
    assert {fact.element_id: fact.value for fact in methods["echannel"].facts} == {
        "bank": "Mandiri", "biller-code": "70012", "bill-key": "990011223344", "amount": "Rp 85.000"}
    assert how_to_pay.BILLER_CODE.value == ""  # the table itself is never filled in
