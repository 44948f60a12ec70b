import uuid
from datetime import UTC, datetime

import pytest

from telehealth.records.errors import InvalidStateError
from telehealth.records.models import Visit, VisitState
from telehealth.records.visits import transition

S = VisitState
LEGAL = {
    (S.SCHEDULED, S.WAITING),
    (S.SCHEDULED, S.CANCELLED),
    (S.SCHEDULED, S.NO_SHOW),  # a patient who never came (issue 11)
    (S.WAITING, S.IN_CALL),
    (S.WAITING, S.SCHEDULED),
    (S.WAITING, S.ENDED),
    (S.WAITING, S.CANCELLED),
    (S.IN_CALL, S.WAITING),
    (S.IN_CALL, S.ENDED),
}


def _visit(state: VisitState) -> Visit:
    return Visit(
        id=uuid.uuid4(),
        patient_id=uuid.uuid4(),
        clinician_id=uuid.uuid4(),
        scheduled_at=datetime.now(UTC),
        state=state,
    )


@pytest.mark.parametrize("old", list(S))
@pytest.mark.parametrize("new", list(S))
def test_every_move_is_either_legal_or_refused(old: VisitState, new: VisitState) -> None:
    visit = _visit(old)
    if old == new:
        assert transition(visit, new) is False
    elif (old, new) in LEGAL:
        assert transition(visit, new) is True
        assert visit.state == new
    else:
        with pytest.raises(InvalidStateError):
            transition(visit, new)
        assert visit.state == old


def test_ending_stamps_time_and_revokes_the_join_link() -> None:
    visit = _visit(S.IN_CALL)
    transition(visit, S.ENDED)
    assert visit.ended_at is not None and visit.join_revoked_at is not None
