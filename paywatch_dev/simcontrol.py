"""A client of the simulator's control API (``/sim/...``), shared by every test and benchmark that drives it."""

from typing import Any

import requests


class SimulatorControl:
    """Trigger moves, read transactions and change the config of a running simulator."""

    def __init__(self, url: str, wait: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.wait = wait

    def act(self, order_id: str, action: str, **params: Any) -> requests.Response:
        """POST /sim/orders/<id>/<action> and return the raw answer."""
        return requests.post(f"{self.url}/sim/orders/{order_id}/{action}", params=params, timeout=10)

    def order(self, order_id: str, wait_attempts: int = 0) -> dict[str, Any]:
        """GET an order (after at least ``wait_attempts`` delivery attempts, waited for on the server)."""
        params = {"wait_attempts": wait_attempts, "timeout": self.wait} if wait_attempts else {}
        response = requests.get(f"{self.url}/sim/orders/{order_id}", params=params, timeout=self.wait + 5)
        response.raise_for_status()
        return response.json()

    def config(self, **changes: Any) -> dict[str, Any]:
        """POST /sim/config."""
        response = requests.post(f"{self.url}/sim/config", json=changes, timeout=10)
        response.raise_for_status()
        return response.json()
