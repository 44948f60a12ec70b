"""The protocol catalogue: every known capture protocol by id and version, in one place."""

from __future__ import annotations

from collections.abc import Iterable

from .protocol import CaptureProtocol, InvalidProtocolError, shipped_protocols

__all__ = ["DEFAULT_PROTOCOL_ID", "ProtocolCatalogue"]

DEFAULT_PROTOCOL_ID = "default-facial-palsy"


class ProtocolCatalogue:
    """Protocols by (id, version); a visit names both, so an older version stays readable."""

    def __init__(self, protocols: Iterable[CaptureProtocol], default_id: str = DEFAULT_PROTOCOL_ID) -> None:
        self._by_key: dict[tuple[str, int], CaptureProtocol] = {}
        for protocol in protocols:
            key = (protocol.id, protocol.version)
            if key in self._by_key:
                raise InvalidProtocolError(f"protocol {protocol.id} v{protocol.version} is defined twice")
            self._by_key[key] = protocol
        self._default_id = default_id
        self.default  # noqa: B018 -- fail at startup, not at the first capture, if the default is missing

    @classmethod
    def shipped(cls) -> ProtocolCatalogue:
        """The protocols of ``capture/protocols/*.json`` (blocking: build it once at startup)."""
        return cls(shipped_protocols())

    @property
    def default(self) -> CaptureProtocol:
        """The newest version of the default protocol."""
        found = self.latest(self._default_id)
        if found is None:
            raise InvalidProtocolError(f"the default protocol {self._default_id!r} is not in the catalogue")
        return found

    def ids(self) -> list[str]:
        """Known protocol ids, sorted."""
        return sorted({pid for pid, _ in self._by_key})

    def latest(self, protocol_id: str) -> CaptureProtocol | None:
        """The newest version of a protocol, or None."""
        versions = [p for (pid, _), p in self._by_key.items() if pid == protocol_id]
        return max(versions, key=lambda p: p.version) if versions else None

    def get(self, protocol_id: str, version: int | str) -> CaptureProtocol | None:
        """One exact version (as a visit records it: the version may be stored as text), or None."""
        try:
            return self._by_key.get((protocol_id, int(version)))
        except ValueError:
            return None
