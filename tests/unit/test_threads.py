"""The model process's thread governor: all threads while the other processes are quiet, one while they are busy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from server.llm.local.threads import ThreadGovernor, proc_cpu_ticks


class FakeMachine:
    """Clock and /proc readings under the test's control (100 ticks a second)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.machine = 0
        self.own = 0
        self.reads = 0

    def clock(self) -> float:
        return self.now

    def read(self) -> tuple[int, int]:
        self.reads += 1
        return self.machine, self.own

    def sleep(self, seconds: float) -> None:
        self.run(seconds, own_cores=0.0, other_cores=self.idle_others)

    idle_others = 0.0

    def run(self, seconds: float, own_cores: float, other_cores: float) -> None:
        self.now += seconds
        self.own += round(own_cores * seconds * 100)
        self.machine += round((own_cores + other_cores) * seconds * 100)


def governor(fake: FakeMachine, threads: int = 2) -> ThreadGovernor:
    return ThreadGovernor(threads, read=fake.read, clock=fake.clock, sleep=fake.sleep, ticks_per_second=100)


def test_all_threads_while_the_other_processes_are_quiet():
    fake = FakeMachine()
    gov = governor(fake)
    assert gov.choose() == 2
    for _ in range(10):
        fake.run(0.5, own_cores=2.0, other_cores=0.05)
        assert gov.choose() == 2
    assert gov.others is not None and gov.others < 0.15


def test_one_thread_while_another_process_is_busy_and_all_again_when_it_stops():
    fake = FakeMachine()
    gov = governor(fake)
    gov.choose()
    fake.run(0.5, own_cores=1.4, other_cores=0.6)  # three runnable threads share two cores
    assert gov.choose() == 1
    fake.run(0.5, own_cores=1.0, other_cores=1.0)
    assert gov.choose() == 1
    fake.run(0.5, own_cores=1.0, other_cores=0.25)  # between the bounds: no change
    assert gov.choose() == 1
    fake.run(0.5, own_cores=1.0, other_cores=0.05)
    assert gov.choose() == 2


def test_readings_closer_than_the_interval_keep_the_last_choice():
    fake = FakeMachine()
    gov = governor(fake)
    gov.choose()
    reads = fake.reads
    fake.run(0.1, own_cores=1.0, other_cores=1.0)
    assert gov.choose() == 2 and fake.reads == reads


def test_after_an_idle_spell_a_fresh_reading_decides_not_the_average_since_the_last_answer():
    fake = FakeMachine()
    gov = governor(fake)
    gov.choose()
    fake.run(60.0, own_cores=0.0, other_cores=0.1)  # a minute with little else running, the model idle
    fake.idle_others = 1.0  # then another process keeps a core busy as the next question comes
    assert gov.choose() == 1
    assert gov.others == pytest.approx(1.0, abs=0.05)


def test_a_single_thread_model_is_never_changed_and_reads_nothing():
    fake = FakeMachine()
    gov = governor(fake, threads=1)
    fake.run(1.0, own_cores=1.0, other_cores=1.0)
    assert gov.choose() == 1 and fake.reads == 0


def test_an_unreadable_proc_keeps_the_current_choice():
    def broken() -> tuple[int, int]:
        raise OSError("no /proc")

    assert ThreadGovernor(2, read=broken).choose() == 2


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_the_proc_reading_sees_another_process_burn_a_core():
    start_machine, start_own = proc_cpu_ticks()
    # One second of CPU time, not of wall time: on a busy machine the child still burns a whole second.
    hog = subprocess.Popen([sys.executable, "-c", "import time\nwhile time.process_time() < 1.0: pass"])
    hog.wait(timeout=60)
    machine, own = proc_cpu_ticks()
    ticks = os.sysconf("SC_CLK_TCK")
    assert (machine - start_machine) - (own - start_own) >= 0.5 * ticks
    assert own - start_own < 0.5 * ticks
