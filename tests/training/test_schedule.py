"""The teacher schedule: step budgets, convergence on a crafted loss curve, state round trip."""

import pytest

from distilnlu.training.schedule import Phase, TeacherSchedule


def converging_schedule():
    return TeacherSchedule(
        [Phase("stage1", until_converged=True, patience=3, min_delta=0.01), Phase("stage2")]
    )


def test_switches_exactly_once_on_a_crafted_curve():
    schedule = converging_schedule()
    # improves, plateaus (gains below min_delta) for 3 evals -> switch at the 6th eval; then the
    # second (last) teacher never switches, even through long plateaus.
    curve = [5.0, 4.0, 3.5, 3.495, 3.49, 3.6, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    events = []
    for i, loss in enumerate(curve):
        step = (i + 1) * 10
        if (switch := schedule.observe(step, loss)) is not None:
            events.append(switch)
    assert [(e.step, e.from_teacher, e.to_teacher) for e in events] == [(60, "stage1", "stage2")]
    assert schedule.current.teacher == "stage2"
    assert schedule.switches == events


def test_improvement_resets_patience():
    schedule = converging_schedule()
    for step, loss in enumerate([5.0, 5.0, 5.0, 4.0, 4.0, 4.0], start=1):
        assert schedule.observe(step, loss) is None  # 2 bad, then a gain, then 2 bad again
    assert schedule.observe(7, 4.0) is not None


def test_nan_validation_loss_counts_as_no_improvement():
    schedule = converging_schedule()
    schedule.observe(1, 3.0)
    schedule.observe(2, float("nan"))
    schedule.observe(3, float("nan"))
    assert schedule.observe(4, float("nan")) is not None


def test_step_budget_switch_and_state_round_trip():
    schedule = TeacherSchedule([Phase("a", until_step=5), Phase("b", until_step=9), Phase("c")])
    fired = [s for s in range(1, 20) if schedule.after_step(s)]
    assert fired == [5, 9]
    assert [s.to_teacher for s in schedule.switches] == ["b", "c"]
    copy = TeacherSchedule([Phase("a", until_step=5), Phase("b", until_step=9), Phase("c")])
    copy.load_state_dict(schedule.state_dict())
    assert copy.index == 2 and copy.switches == schedule.switches


def test_state_round_trip_mid_phase_keeps_patience():
    schedule = converging_schedule()
    schedule.observe(1, 3.0)
    schedule.observe(2, 3.0)
    copy = converging_schedule()
    copy.load_state_dict(schedule.state_dict())
    assert copy.observe(3, 3.0) is None
    assert copy.observe(4, 3.0) is not None  # third bad eval in a row, across the round trip


def test_an_empty_schedule_is_an_error():
    with pytest.raises(ValueError):
        TeacherSchedule([])
