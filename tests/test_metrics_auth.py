"""``/metrics`` needs ``Authorization: Bearer $METRICS_TOKEN`` when METRICS_TOKEN is set, and is open when not."""

import pytest

pytestmark = pytest.mark.django_db


def test_metrics_are_open_without_a_token_configured(client, settings) -> None:
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"django_http_requests" in response.content


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Bearer wrong-token", "Basic czNjcmV0LW1ldHJpY3M=",
                                           "Bearer s3cret-metrics-and-more", "Bearer s3cret-metric"])
def test_metrics_without_the_right_bearer_token_are_403(client, settings, authorization) -> None:
    settings.METRICS_TOKEN = "s3cret-metrics"
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = client.get("/metrics", **headers)
    assert response.status_code == 403
    assert b"django_http_requests" not in response.content


@pytest.mark.parametrize("authorization", ["Bearer s3cret-metrics", "bearer s3cret-metrics"])
def test_metrics_with_the_bearer_token_are_200(client, settings, authorization) -> None:
    settings.METRICS_TOKEN = "s3cret-metrics"
    response = client.get("/metrics", HTTP_AUTHORIZATION=authorization)
    assert response.status_code == 200
    assert b"django_http_requests" in response.content
