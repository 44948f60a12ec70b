"""Visit signaling: typed messages, rooms with a waiting room, WebSockets, brokers, TURN."""

from telehealth.signaling import capturemessages as capturemessages  # registers the capture types
from telehealth.signaling.broker import Broker, BrokerUnavailable, InProcessBroker
from telehealth.signaling.config import SignalingSettings
from telehealth.signaling.gateway import SignalingStateError, VisitGateway, VisitStateName
from telehealth.signaling.gctune import tune_gc_for_latency
from telehealth.signaling.identity import Identity, Role
from telehealth.signaling.outbox import CloseCode
from telehealth.signaling.redisbroker import RedisBroker
from telehealth.signaling.routes import HUB_KEY, make_broker, setup_signaling
from telehealth.signaling.turn import ice_servers, turn_credentials

__all__ = [
    "HUB_KEY",
    "Broker",
    "BrokerUnavailable",
    "CloseCode",
    "Identity",
    "InProcessBroker",
    "RedisBroker",
    "Role",
    "SignalingSettings",
    "SignalingStateError",
    "VisitGateway",
    "VisitStateName",
    "ice_servers",
    "make_broker",
    "setup_signaling",
    "tune_gc_for_latency",
    "turn_credentials",
]
