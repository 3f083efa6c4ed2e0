"""The station as hardware, in no protocol's words: EVSEs and their connectors, the meter,
the EV. A protocol version is a dialect over this model: it hears what changed at an EVSE
and says it in its own messages."""
