"""Process helpers shared by the tests, the benchmarks and the screenshot script.

Real servers started and waited for (``servers``), a throw-away PostgreSQL
(``postgres``, also ``python -m paywatch_dev.postgres -- COMMAND``), the whole
product as processes (``stack``) and a client of the simulator's control API
(``simcontrol``). Not part of the product: nothing under project/ or the apps
imports it.
"""
