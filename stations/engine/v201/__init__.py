"""OCPP 2.0.1, one module per functional block of Part 2 (as EVerest libocpp's
`lib/ocpp/v2/functional_blocks/`): each owns the handlers, the state and the device-model
variables of its use cases, with the requirement ids beside the rules they implement."""
