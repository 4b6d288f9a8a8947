"""Chaos: protocol chaos from message descriptors, infrastructure faults, experiments with verdicts.

- :mod:`.protocol`    ProtocolChaos (the papers' three classes for any message), EvilSerializer
- :mod:`.mangle`      structural damage to wire bytes (class 1)
- :mod:`.samples`     odd values by type and field-name hint, naughty strings (classes 2, 3)
- :mod:`.traffic`     valid DeviceRequests with chaos mixed in, paced onto a topic
- :mod:`.faults`      FaultClient: ``/chaos`` leases on simulated devices, rollback = DELETE
- :mod:`.experiment`  the TOML experiment format and its validation (docs/chaos.md)
- :mod:`.probes`      steady-state probes over the state model's Snapshot
- :mod:`.runner`      Runner: plan, hypothesis, method, guardrails, rollbacks, verdict
- :mod:`.report`      the JSON report and the verdict's exit codes
- :mod:`.cli`         ``pipeconsole chaos run``
"""
