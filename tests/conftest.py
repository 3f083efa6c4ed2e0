from types import SimpleNamespace

import pytest
import trustme


@pytest.fixture(scope="session")
def pki():
    """PEM text of a CA and a client certificate and key it issued."""
    ca = trustme.CA()
    client = ca.issue_cert("station.example")
    return SimpleNamespace(
        ca_cert=ca.cert_pem.bytes().decode(),
        client_cert=client.cert_chain_pems[0].bytes().decode(),
        client_key=client.private_key_pem.bytes().decode(),
    )


@pytest.fixture
def make_station(db):
    """Saves a valid station with one EVSE and one connector; keyword arguments override."""
    from stations.models import Connector, Evse, Station

    def make(station_id="CS-1", *, evses=1, **fields):
        fields = {"csms_url": "ws://csms.example:9000/ocpp"} | fields
        station = Station.objects.create(station_id=station_id, **fields)
        for evse_id in range(1, evses + 1):
            evse = Evse.objects.create(station=station, evse_id=evse_id)
            Connector.objects.create(evse=evse, connector_id=1)
        return station

    return make
