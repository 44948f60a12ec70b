"""The codec: one registry, validated values, bus frames through the same models."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from telehealth.signaling import (
    Identity,
    Role,
    SignalingSettings,
    ice_servers,
    resumetoken,
    turn_credentials,
)
from telehealth.signaling.codec import (
    BusFrame,
    ProtocolError,
    decode_client,
    decode_frame,
    encode_frame,
)
from telehealth.signaling.messages import REGISTRY, Direction, Error, ErrorCode, IceCandidate, Offer


def test_registry_has_every_protocol_type() -> None:
    required = {
        "auth",
        "resume",
        "join",
        "waiting",
        "admit",
        "decline",
        "offer",
        "answer",
        "ice_candidate",
        "ice_restart",
        "hangup",
        "presence",
        "error",
        "lobby",
        "lobby_update",
    }
    assert required <= set(REGISTRY)
    assert all(REGISTRY[t].RELAY for t in ("offer", "answer", "ice_candidate", "ice_restart"))


def test_decoded_offer_is_a_typed_value() -> None:
    offer = decode_client('{"type":"offer","v":1,"id":"x1","peer":"p","sdp":"v=0"}', 65536)
    assert isinstance(offer, Offer) and offer.peer == "p" and offer.sdp == "v=0"


def test_end_of_candidates_is_a_null_candidate() -> None:
    msg = decode_client('{"type":"ice_candidate","v":1,"id":"x","candidate":null}', 65536)
    assert isinstance(msg, IceCandidate) and msg.candidate is None


@pytest.mark.parametrize(
    "raw",
    [
        '{"type":"auth","v":1,"id":"a"}',
        '{"type":"auth","v":1,"id":"a","session":true,"token":"t"}',
    ],
)
def test_auth_needs_exactly_one_credential(raw: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_client(raw, 65536)
    assert info.value.code is ErrorCode.INVALID_MESSAGE and info.value.ref == "a"


def test_size_limit_counts_bytes_not_characters() -> None:
    raw = '{"type":"offer","v":1,"id":"a","sdp":"' + "é" * 40_000 + '"}'
    with pytest.raises(ProtocolError) as info:
        decode_client(raw, 65536)
    assert info.value.code is ErrorCode.TOO_LARGE


def test_bus_frames_round_trip_through_the_same_models() -> None:
    frame = BusFrame("node1", "a", "b", Offer(peer="a", sdp="v=0"))
    back = decode_frame(encode_frame(frame))
    assert back == frame


def test_bus_refuses_client_only_types() -> None:
    auth = '{"type":"auth","v":1,"id":"a","session":true}'
    raw = '{"node":"n","sender":null,"to":null,"message":' + auth + "}"
    with pytest.raises(ProtocolError):
        decode_frame(raw)
    assert not REGISTRY["auth"].DIRECTION & Direction.BUS


def test_turn_credentials_follow_the_turn_rest_scheme() -> None:
    username, credential = turn_credentials("s3cret", "user-1", ttl=600, now=1_000_000)
    assert username == "1000600:user-1"
    expected = hmac.new(b"s3cret", b"1000600:user-1", hashlib.sha1).digest()
    assert base64.b64decode(credential) == expected


def test_turn_without_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="turn_secret"):
        SignalingSettings(resume_secret=b"x" * 16, turn_urls=("turn:t",))


def test_ice_servers_carry_no_static_password() -> None:
    settings = SignalingSettings(resume_secret=b"x" * 16, turn_urls=("turn:t",), turn_secret="k", turn_ttl=60)
    (turn,) = ice_servers(settings, "u", now=100)
    assert turn.username == "160:u" and turn.credential != "k"


def test_resume_tokens_are_bound_to_secret_and_expiry() -> None:
    ident = Identity("p1", Role.PATIENT, "Pat", "v1", None, "drwho")
    token = resumetoken.issue(b"k" * 16, ident, epoch=7, lifetime=60, now=1000)
    claim = resumetoken.verify(b"k" * 16, token, now=1059)
    assert claim is not None and claim.identity == ident and claim.epoch == 7
    assert resumetoken.verify(b"k" * 16, token, now=1061) is None
    assert resumetoken.verify(b"o" * 16, token, now=1000) is None
    body, _, mac = token.partition(".")
    assert resumetoken.verify(b"k" * 16, body + "x." + mac, now=1000) is None


@pytest.mark.parametrize("bad_id", ["a b", "x/../y", "é", "id\x00", "<script>"])
def test_an_id_with_disallowed_characters_gets_an_error_frame_without_echoing_it(bad_id: str) -> None:
    frame = json.dumps({"type": "offer", "v": 1, "id": bad_id, "peer": "p", "sdp": "v=0"})
    with pytest.raises(ProtocolError) as caught:
        decode_client(frame, 65536)
    assert caught.value.code is ErrorCode.INVALID_MESSAGE
    # The error frame is built from the ref: it must itself be a valid message.
    assert caught.value.ref is None
    Error(code=caught.value.code, message=caught.value.message, ref=caught.value.ref)
