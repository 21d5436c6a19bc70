"""The handshake: tokens (every way a token can be bad), client ids, subprotocol,
compression, and the HTTP endpoints beside the WebSocket."""

from __future__ import annotations

import base64
import json
import time

import jwt as pyjwt
import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from wifi_densepose import Server

from .conftest import connect, http_get, request, wait_for

SECRET = "test-secret-for-hs256-at-least-32-bytes!"


@pytest.fixture
def hs_server():
    with Server(jwt_secret=SECRET) as s:
        s.add_environment("room_001")
        s.add_environment("room_002")
        yield s


async def refused(server, token=None, headers=None, **params) -> tuple:
    """Connects expecting refusal; returns (status, json body)."""
    kwargs = {"additional_headers": headers} if headers else {}
    url = server.url
    from urllib.parse import urlencode

    q = dict(params)
    if token is not None:
        q["token"] = token
    if q:
        url += "?" + urlencode(q)
    with pytest.raises(websockets.InvalidStatus) as e:
        async with websockets.connect(url, **kwargs):
            pass
    resp = e.value.response
    return resp.status_code, json.loads(resp.body.decode())


def b64(d: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


async def test_missing_token_is_401_with_reason(hs_server):
    status, body = await refused(hs_server)
    assert status == 401
    assert body["reason"] == "missing_token"
    assert "token" in body["message"]


@pytest.mark.parametrize(
    "token,reason",
    [
        ("abc", "malformed_token"),
        ("a.b.c", "malformed_token"),
        (b64({"alg": "HS256"}) + "." + b64({"sub": "x"}), "malformed_token"),
    ],
)
async def test_malformed_tokens_are_401(hs_server, token, reason):
    status, body = await refused(hs_server, token)
    assert (status, body["reason"]) == (401, reason)


async def test_wrong_secret_is_bad_signature(hs_server):
    token = pyjwt.encode({"sub": "x", "exp": int(time.time()) + 60}, "another-secret-of-enough-length!!", "HS256")
    status, body = await refused(hs_server, token)
    assert (status, body["reason"]) == (401, "bad_signature")


async def test_alg_none_is_refused(hs_server):
    token = b64({"alg": "none", "typ": "JWT"}) + "." + b64({"sub": "x", "exp": int(time.time()) + 60}) + "."
    status, body = await refused(hs_server, token)
    assert status == 401
    assert body["reason"] in ("algorithm_refused", "malformed_token")


async def test_expired_token_is_401(hs_server):
    token = pyjwt.encode({"sub": "x", "exp": int(time.time()) - 10}, SECRET, "HS256")
    status, body = await refused(hs_server, token)
    assert (status, body["reason"]) == (401, "token_expired")


async def test_token_without_exp_is_refused(hs_server):
    token = pyjwt.encode({"sub": "x"}, SECRET, "HS256")
    status, body = await refused(hs_server, token)
    assert (status, body["reason"]) == (401, "malformed_token")
    assert "exp" in body["message"]


async def test_externally_signed_hs256_token_is_accepted(hs_server):
    token = pyjwt.encode({"sub": "ext", "exp": int(time.time()) + 60}, SECRET, "HS256")
    async with connect(hs_server, token) as ws:
        status = await wait_for(ws, lambda m: m["type"] == "connection_status")
        assert status["data"]["status"] == "connected"


async def test_bearer_header_is_accepted(hs_server):
    token = hs_server.issue_token("me")
    async with websockets.connect(hs_server.url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        msg = await wait_for(ws, lambda m: True)
        assert msg["type"] == "connection_status"


def _pem(key) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_public_key_algorithms(alg):
    key = rsa.generate_private_key(65537, 2048) if alg == "RS256" else ec.generate_private_key(ec.SECP256R1())
    pem = _pem(key)
    with Server(jwt_algorithm=alg, jwt_public_key=pem) as s:
        good = pyjwt.encode({"sub": "k", "exp": int(time.time()) + 60}, key, alg)
        async with connect(s, good) as ws:
            assert (await wait_for(ws))["type"] == "connection_status"
        # Algorithm confusion: an HS256 token "signed" with the public key must fail.
        confused = pyjwt.encode({"sub": "k", "exp": int(time.time()) + 60}, "x" * 32, "HS256")
        status, body = await refused(s, confused)
        assert status == 401 and body["reason"] in ("algorithm_refused", "bad_signature")
        other = rsa.generate_private_key(65537, 2048) if alg == "RS256" else ec.generate_private_key(ec.SECP256R1())
        forged = pyjwt.encode({"sub": "k", "exp": int(time.time()) + 60}, other, alg)
        status, body = await refused(s, forged)
        assert (status, body["reason"]) == (401, "bad_signature")
        with pytest.raises(ValueError, match="cannot issue"):
            s.issue_token("k")


def test_bad_key_configuration_is_a_clear_error():
    with pytest.raises(ValueError, match="jwt_public_key"):
        Server(jwt_algorithm="RS256")
    with pytest.raises(ValueError, match="not supported"):
        Server(jwt_algorithm="HS512")
    with pytest.raises(ValueError, match="RS256 public key is not an RSA public key in PEM"):
        Server(jwt_algorithm="RS256", jwt_public_key="not a pem")


async def test_subprotocol_negotiated_when_offered(hs_server):
    token = hs_server.issue_token("me")
    async with connect(hs_server, token) as ws:
        assert ws.subprotocol == "wifi-densepose-v1"
    async with websockets.connect(f"{hs_server.url}?token={token}") as ws:
        assert ws.subprotocol is None
        assert (await wait_for(ws))["type"] == "connection_status"


async def test_foreign_subprotocol_only_is_refused(hs_server):
    token = hs_server.issue_token("me")
    with pytest.raises(websockets.InvalidStatus) as e:
        async with websockets.connect(f"{hs_server.url}?token={token}", subprotocols=["mqtt"]):
            pass
    assert e.value.response.status_code == 400
    assert json.loads(e.value.response.body)["reason"] == "unsupported_subprotocol"


async def test_client_id_is_echoed_and_generated(hs_server):
    token = hs_server.issue_token("me")
    async with connect(hs_server, token, client_id="dashboard_7") as ws:
        msg = await wait_for(ws)
        assert msg["data"]["client_id"] == "dashboard_7"
        assert msg["metadata"]["client_id"] == "dashboard_7"
    async with connect(hs_server, token) as ws:
        assert (await wait_for(ws))["data"]["client_id"].startswith("client_")
    status, body = await refused(hs_server, token, client_id="x" * 200)
    assert (status, body["reason"]) == (400, "invalid_client_id")


async def test_invalid_compression_parameter_is_400(hs_server):
    status, body = await refused(hs_server, hs_server.issue_token("me"), compression="brotli")
    assert (status, body["reason"]) == (400, "invalid_compression")


async def test_environment_claim_limits_subscriptions(hs_server):
    token = hs_server.issue_token("me", environments=["room_001"])
    async with connect(hs_server, token) as ws:
        await wait_for(ws)
        err = await request(ws, "subscribe", {"subscriptions": [
            {"event_type": "pose_data", "filters": {"environment_id": "room_002"}}]})
        assert err["type"] == "error"
        assert err["data"]["error_code"] == "PERMISSION_DENIED"
        assert err["data"]["details"]["field"] == "subscriptions[0].filters.environment_id"
        ok = await request(ws, "subscribe", {"subscriptions": [
            {"event_type": "pose_data", "filters": {"environment_id": "room_001"}}]})
        assert ok["type"] == "ack"
        # Without an environment filter, the grant still hides other rooms.
        await request(ws, "subscribe", {"subscriptions": [{"event_type": "activity_event"}]})
        hs_server.publish("activity_event", {"event_type": "fall_detected", "n": 2}, "room_002")
        hs_server.publish("activity_event", {"event_type": "fall_detected", "n": 1}, "room_001")
        msg = await wait_for(ws, lambda m: m["type"] == "activity_event")
        assert msg["data"]["n"] == 1


def test_health_and_metrics(hs_server):
    status, headers, body = http_get(hs_server.http_url + "/health")
    assert status == 200
    health = json.loads(body)
    # Without a token: how many environments, not their names.
    assert health["status"] == "ok" and health["environments"] == []
    assert health["environment_count"] >= 1
    token = hs_server.issue_token("ops")
    status, headers, body = http_get(hs_server.http_url + "/health", {"Authorization": f"Bearer {token}"})
    assert "room_001" in json.loads(body)["environments"]
    status, headers, body = http_get(hs_server.http_url + "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert "wdp_connections_active 0" in body
    assert 'wdp_delivery_latency_seconds_bucket{le="+Inf"}' in body


def test_http_errors(hs_server):
    status, _, body = http_get(hs_server.http_url + "/nope")
    assert status == 404 and "/ws/v1" in json.loads(body)["message"]
    status, _headers, body = http_get(hs_server.http_url + "/ws/v1")
    assert status == 426 and json.loads(body)["reason"] == "not_websocket"


async def test_refused_handshakes_are_counted(hs_server):
    await refused(hs_server, "garbage")
    _, _, body = http_get(hs_server.http_url + "/metrics")
    assert "wdp_handshakes_refused_total 1" in body
